{{/* Name of the chart, overridable. */}}
{{- define "demo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: "<release>-<chart>", or the release name alone when it already
contains the chart name. Truncated to 63 characters (DNS label limit).
*/}}
{{- define "demo.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, as used by the helm.sh/chart label. */}}
{{- define "demo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "demo.labels" -}}
helm.sh/chart: {{ include "demo.chart" . }}
{{ include "demo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Labels that select the release's pods. */}}
{{- define "demo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "demo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The application image reference. */}}
{{- define "demo.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* Name of the Secret holding the database password(s). */}}
{{- define "demo.dbSecretName" -}}
{{- printf "%s-db" (include "demo.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Host of the PostgreSQL server. */}}
{{- define "demo.postgresqlHost" -}}
{{- .Values.postgresql.host | default (printf "%s-postgresql" (include "demo.fullname" .)) }}
{{- end }}

{{/* Environment shared by the web and worker containers. */}}
{{- define "demo.env" -}}
- name: DATABASE_HOST
  value: {{ include "demo.postgresqlHost" . | quote }}
- name: DATABASE_PORT
  value: {{ .Values.postgresql.port | quote }}
- name: DATABASE_USER
  value: {{ .Values.postgresql.user | quote }}
- name: DATABASE_NAME
  value: {{ .Values.postgresql.database | quote }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "demo.dbSecretName" . }}
      key: password
{{- end }}
