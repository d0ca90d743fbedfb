// The trimmed KEDA build: what survives of buildScaler's switch and of pkg/scalers.
import { describe, expect, it } from 'vitest';
import {
  KEPT_SCALER_FILES,
  KEPT_TRIGGERS,
  droppedScalerFiles,
  trimScalersBuilder,
} from '../../devcluster/keda-trim.ts';

// The shape of KEDA's pkg/scaling/scalers_builder.go around its marked switch.
const BUILDER = `package scaling

func buildScaler(triggerType string) (scalers.Scaler, error) {
\t// TRIGGERS-START
\tswitch triggerType {
\tcase "activemq":
\t\treturn scalers.NewActiveMQScaler(config)
\tcase "cpu":
\t\treturn scalers.NewCPUMemoryScaler(corev1.ResourceCPU, config)
\tcase "cron":
\t\treturn scalers.NewCronScaler(config)
\tcase "kafka":
\t\treturn scalers.NewKafkaScaler(ctx, config)
\tcase "memory":
\t\treturn scalers.NewCPUMemoryScaler(corev1.ResourceMemory, config)
\tcase "redis":
\t\treturn scalers.NewRedisScaler(ctx, false, false, config)
\tcase "redis-cluster":
\t\treturn scalers.NewRedisScaler(ctx, true, false, config)
\tcase "redis-cluster-streams":
\t\treturn scalers.NewRedisStreamsScaler(ctx, true, false, config)
\tcase "redis-sentinel":
\t\treturn scalers.NewRedisScaler(ctx, false, true, config)
\tcase "redis-sentinel-streams":
\t\treturn scalers.NewRedisStreamsScaler(ctx, false, true, config)
\tcase "redis-streams":
\t\treturn scalers.NewRedisStreamsScaler(ctx, false, false, config)
\tdefault:
\t\treturn nil, fmt.Errorf("no scaler found for type: %s", triggerType)
\t}
\t// TRIGGERS-END
}
`;

describe('trimScalersBuilder', () => {
  const trimmed = trimScalersBuilder(BUILDER);
  const cases = [...trimmed.matchAll(/case "([^"]+)"/g)].map((m) => m[1]);

  it('keeps exactly the kept triggers, the default and everything outside the switch', () => {
    expect(new Set(cases)).toEqual(new Set(KEPT_TRIGGERS));
    expect(trimmed).not.toContain('Kafka');
    expect(trimmed).not.toContain('ActiveMQ');
    expect(trimmed).toContain('no scaler found for type');
    expect(trimmed.startsWith('package scaling\n\nfunc buildScaler')).toBe(true);
    expect(trimmed.endsWith('\t// TRIGGERS-END\n}\n')).toBe(true);
  });

  it('refuses a source without the markers, or one missing a kept trigger', () => {
    expect(() => trimScalersBuilder('package scaling\n')).toThrow(/TRIGGERS-START/);
    expect(() => trimScalersBuilder(BUILDER.replace('"redis-streams"', '"other"'))).toThrow(
      /no case for redis-streams/,
    );
  });
});

describe('droppedScalerFiles', () => {
  const files = [...KEPT_SCALER_FILES, 'kafka_scaler.go', 'kafka_scaler_test.go', 'README.md'];

  it('drops every other Go file, tests included, and leaves the rest', () => {
    expect(droppedScalerFiles(files)).toEqual(['kafka_scaler.go', 'kafka_scaler_test.go']);
  });

  it('refuses a tree that lacks a kept file', () => {
    expect(() => droppedScalerFiles(['scaler.go'])).toThrow(/redis_scaler.go/);
  });
});
