{{/* Name of the chart, 63 characters at most. */}}
{{- define "scalable-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: the release name when it already contains the chart name. */}}
{{- define "scalable-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "scalable-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "scalable-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "scalable-operator.labels" -}}
{{ include "scalable-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: scalable-operator
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "scalable-operator.serviceAccountName" -}}
{{- default (include "scalable-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* By digest when one is given (a moved tag cannot change what runs), else by tag. */}}
{{- define "scalable-operator.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "scalable-operator.imagesTag" -}}
{{- default .Chart.AppVersion .Values.images.tag -}}
{{- end -}}

{{/* The API server's addresses as CIDRs, comma-separated: networkPolicy.apiServer.cidrs, or
looked up at install and upgrade (the kubernetes Service's cluster IPs and its endpoints);
empty when neither is known (helm template has no cluster to ask). */}}
{{- define "scalable-operator.apiServerCidrs" -}}
{{- $api := .Values.networkPolicy.apiServer.cidrs -}}
{{- if not $api -}}
{{- $ips := list -}}
{{- with (lookup "v1" "Service" "default" "kubernetes") -}}
{{- $ips = concat $ips (.spec.clusterIPs | default (list .spec.clusterIP)) -}}
{{- end -}}
{{- with (lookup "discovery.k8s.io/v1" "EndpointSlice" "default" "kubernetes") -}}
{{- range .endpoints }}{{- $ips = concat $ips .addresses }}{{- end -}}
{{- end -}}
{{- range $ips -}}
{{- $api = append $api (printf "%s/%s" . (ternary "128" "32" (contains ":" .))) -}}
{{- end -}}
{{- end -}}
{{- join "," (uniq $api) -}}
{{- end -}}

{{/* The API server's ports, comma-separated: 443 (the kubernetes Service) and 6443 (where
kubeadm's API servers listen), and whatever port the kubernetes EndpointSlice names. */}}
{{- define "scalable-operator.apiServerPorts" -}}
{{- $ports := list 443 6443 -}}
{{- with (lookup "discovery.k8s.io/v1" "EndpointSlice" "default" "kubernetes") -}}
{{- range .ports }}{{- $ports = append $ports (int .port) }}{{- end -}}
{{- end -}}
{{- join "," (uniq $ports) -}}
{{- end -}}
