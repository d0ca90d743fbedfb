// Generated passwords, split by reader: <app>-db-auth (superuser, replication, REST API,
// monitoring) and <app>-db-rewind (pg_rewind's role) only Postgres pods mount; <app>-db-app
// (the app role's) is what app pods read.
// Both are retained (no owner): the data they open outlives the app under Retain, and a
// re-created app must log in to it with the same passwords.
import type { AppModel } from '../../api/model.ts';
import type { K8sObject } from '../shared/chart.ts';
import { generatedSecret } from '../shared/secrets.ts';
import {
  APP_PASSWORD_KEY,
  AUTH_KEYS,
  REWIND_PASSWORD_KEY,
  appSecretName,
  authSecretName,
  rewindSecretName,
} from './names.ts';

export function databaseSecrets(app: AppModel): K8sObject[] {
  return [
    generatedSecret(
      app,
      'database',
      authSecretName(app),
      Object.values(AUTH_KEYS),
      'postgres',
      true,
    ),
    generatedSecret(app, 'database', appSecretName(app), [APP_PASSWORD_KEY], 'postgres', true),
    generatedSecret(
      app,
      'database',
      rewindSecretName(app),
      [REWIND_PASSWORD_KEY],
      'postgres',
      true,
    ),
  ];
}
