{{/* Names, labels and the pieces every pacsflow pod shares. */}}

{{- define "pacsflow.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* "<release>-pacsflow", or the release name when it already holds the chart name. */}}
{{- define "pacsflow.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The HTTP roles and all pacsflow roles, in a fixed order. */}}
{{- define "pacsflow.httpRoles" -}}stow qido wado ups commitment{{- end }}
{{- define "pacsflow.roles" -}}stow qido wado ups commitment worker{{- end }}

{{- define "pacsflow.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object; call with (dict "root" $ "role" "stow"). */}}
{{- define "pacsflow.labels" -}}
helm.sh/chart: {{ include "pacsflow.chart" .root }}
{{ include "pacsflow.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: pacsflow
{{- end }}

{{/* Selector labels of one role's pods; call with (dict "root" $ "role" "stow"). */}}
{{- define "pacsflow.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pacsflow.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{/* Name of a role's objects: "<fullname>-<role>". */}}
{{- define "pacsflow.roleName" -}}
{{- printf "%s-%s" (include "pacsflow.fullname" .root) .role }}
{{- end }}

{{/* ServiceAccount of a role; call with (dict "root" $ "role" "stow"). */}}
{{- define "pacsflow.serviceAccountName" -}}
{{- $sa := (index .root.Values .role).serviceAccount }}
{{- if $sa.create }}
{{- default (include "pacsflow.roleName" .) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
{{- end }}
{{- end }}

{{- define "pacsflow.image" -}}
{{- $image := .Values.image }}
{{- if $image.digest }}
{{- printf "%s@%s" $image.repository $image.digest }}
{{- else }}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* Secret with the credentials given inline in the values. */}}
{{- define "pacsflow.credentialsSecret" -}}
{{- printf "%s-credentials" (include "pacsflow.fullname" .) }}
{{- end }}

{{/* PACSFLOW_PUBLIC_URL: set, or derived from the first Ingress host. */}}
{{- define "pacsflow.publicUrl" -}}
{{- if .Values.pacsflow.publicUrl }}
{{- .Values.pacsflow.publicUrl }}
{{- else if and .Values.ingress.enabled .Values.ingress.hosts }}
{{- $host := (first .Values.ingress.hosts).host }}
{{- $tls := false }}
{{- range .Values.ingress.tls }}
{{- if has $host .hosts }}{{ $tls = true }}{{ end }}
{{- end }}
{{- printf "%s://%s/dicom-web" (ternary "https" "http" $tls) $host }}
{{- end }}
{{- end }}

{{/* PACSFLOW_OBJECT_STORE_URL: s3[+https]://endpoint/bucket[/prefix][?region=...]. */}}
{{- define "pacsflow.objectStoreUrl" -}}
{{- $s3 := .Values.objectStore }}
{{- $url := printf "%s://%s/%s" (ternary "s3+https" "s3" $s3.tls.enabled) $s3.endpoint $s3.bucket }}
{{- if $s3.prefix }}{{ $url = printf "%s/%s" $url (trimAll "/" $s3.prefix) }}{{ end }}
{{- if $s3.region }}{{ $url = printf "%s?region=%s" $url $s3.region }}{{ end }}
{{- $url }}
{{- end }}

{{/* Kafka's security.protocol from tls.enabled and sasl.enabled. */}}
{{- define "pacsflow.kafkaProtocol" -}}
{{- $k := .Values.kafka }}
{{- if and $k.tls.enabled $k.sasl.enabled }}SASL_SSL
{{- else if $k.tls.enabled }}SSL
{{- else if $k.sasl.enabled }}SASL_PLAINTEXT
{{- else }}PLAINTEXT
{{- end }}
{{- end }}

{{/* Refuse values that render but cannot work. */}}
{{- define "pacsflow.validate" -}}
{{- $k := .Values.kafka }}
{{- if and $k.sasl.enabled (not $k.sasl.existingSecret) (or (not $k.sasl.username) (not $k.sasl.password)) }}
{{- fail "kafka.sasl.enabled needs kafka.sasl.username and kafka.sasl.password, or kafka.sasl.existingSecret" }}
{{- end }}
{{- $s3 := .Values.objectStore }}
{{- if and (not $s3.existingSecret) (ne (empty $s3.accessKey) (empty $s3.secretKey)) }}
{{- fail "objectStore.accessKey and objectStore.secretKey go together (or set objectStore.existingSecret)" }}
{{- end }}
{{- $auth := .Values.index.auth }}
{{- if and $auth.apiKey $auth.username }}
{{- fail "index.auth: give username and password, or apiKey, not both" }}
{{- end }}
{{- if and .Values.index.tls.caSecret.name (not (hasPrefix "https://" .Values.index.url)) }}
{{- fail "index.tls.caSecret is for an https:// index.url" }}
{{- end }}
{{- $worker := .Values.worker }}
{{- $most := ternary $worker.autoscaling.maxReplicas $worker.replicaCount (or $worker.autoscaling.enabled .Values.keda.enabled) }}
{{- if and $worker.enabled (gt (int $most) (int $k.partitions)) }}
{{- fail (printf "worker: %d replicas exceed kafka.partitions (%d); a worker without a partition idles" (int $most) (int $k.partitions)) }}
{{- end }}
{{- $base64 := eq (int .Values.pacsflow.recordVersion) 1 }}
{{- $inline := add (ternary (div (mul .Values.pacsflow.inlineMaxBytes 4) 3) .Values.pacsflow.inlineMaxBytes $base64) 65536 }}
{{- if gt (int64 $inline) (int64 $k.maxMessageBytes) }}
{{- fail "pacsflow.inlineMaxBytes + 64 KiB (x 4/3 with recordVersion 1) must fit kafka.maxMessageBytes" }}
{{- end }}
{{- if and .Values.auth.enabled (or (not .Values.auth.issuer) (not .Values.auth.audience)) }}
{{- fail "auth.enabled (the default) needs auth.issuer and auth.audience (docs/security.md); set auth.enabled=false only behind a gateway that authenticates" }}
{{- end }}
{{- end }}

{{/* Environment of every pacsflow container: the ConfigMap, then credentials from Secrets. */}}
{{- define "pacsflow.env" -}}
{{- $root := . }}
{{- $credentials := include "pacsflow.credentialsSecret" . }}
{{- $k := .Values.kafka }}
{{- if $k.sasl.enabled }}
- name: PACSFLOW_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ default $credentials $k.sasl.existingSecret }}
      key: {{ ternary $k.sasl.usernameKey "kafka-sasl-username" (not (empty $k.sasl.existingSecret)) }}
- name: PACSFLOW_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ default $credentials $k.sasl.existingSecret }}
      key: {{ ternary $k.sasl.passwordKey "kafka-sasl-password" (not (empty $k.sasl.existingSecret)) }}
{{- end }}
{{- $s3 := .Values.objectStore }}
{{- if or $s3.existingSecret $s3.accessKey }}
- name: PACSFLOW_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ default $credentials $s3.existingSecret }}
      key: {{ ternary $s3.accessKeyKey "s3-access-key" (not (empty $s3.existingSecret)) }}
- name: PACSFLOW_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ default $credentials $s3.existingSecret }}
      key: {{ ternary $s3.secretKeyKey "s3-secret-key" (not (empty $s3.existingSecret)) }}
{{- end }}
{{- $auth := .Values.index.auth }}
{{- if $auth.existingSecret }}
{{- range $variable, $key := dict "PACSFLOW_INDEX_USERNAME" $auth.usernameKey "PACSFLOW_INDEX_PASSWORD" $auth.passwordKey "PACSFLOW_INDEX_API_KEY" $auth.apiKeyKey }}
- name: {{ $variable }}
  valueFrom:
    secretKeyRef:
      name: {{ $auth.existingSecret }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- else }}
{{- if $auth.username }}
- name: PACSFLOW_INDEX_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ $credentials }}
      key: index-username
- name: PACSFLOW_INDEX_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $credentials }}
      key: index-password
{{- end }}
{{- if $auth.apiKey }}
- name: PACSFLOW_INDEX_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $credentials }}
      key: index-api-key
{{- end }}
{{- end }}
{{- end }}

{{/* TLS material: one read-only Secret volume per CA bundle or client certificate. */}}
{{- define "pacsflow.tlsVolumes" -}}
{{- $k := .Values.kafka }}
{{- if and $k.tls.enabled $k.tls.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ $k.tls.caSecret.name }}
    defaultMode: 0440
    items:
      - key: {{ $k.tls.caSecret.key }}
        path: ca.crt
{{- end }}
{{- if and $k.tls.enabled $k.tls.clientCertSecret.name }}
- name: kafka-client-cert
  secret:
    secretName: {{ $k.tls.clientCertSecret.name }}
    defaultMode: 0440
    items:
      - key: {{ $k.tls.clientCertSecret.certKey }}
        path: tls.crt
      - key: {{ $k.tls.clientCertSecret.keyKey }}
        path: tls.key
{{- end }}
{{- $s3 := .Values.objectStore }}
{{- if and $s3.tls.enabled $s3.tls.caSecret.name }}
- name: s3-ca
  secret:
    secretName: {{ $s3.tls.caSecret.name }}
    defaultMode: 0440
    items:
      - key: {{ $s3.tls.caSecret.key }}
        path: ca.crt
{{- end }}
{{- if .Values.index.tls.caSecret.name }}
- name: index-ca
  secret:
    secretName: {{ .Values.index.tls.caSecret.name }}
    defaultMode: 0440
    items:
      - key: {{ .Values.index.tls.caSecret.key }}
        path: ca.crt
{{- end }}
{{- if and .Values.auth.enabled .Values.auth.caSecret.name }}
- name: idp-ca
  secret:
    secretName: {{ .Values.auth.caSecret.name }}
    defaultMode: 0440
    items:
      - key: {{ .Values.auth.caSecret.key }}
        path: ca.crt
{{- end }}
{{- if .Values.audit.caSecret.name }}
- name: audit-ca
  secret:
    secretName: {{ .Values.audit.caSecret.name }}
    defaultMode: 0440
    items:
      - key: {{ .Values.audit.caSecret.key }}
        path: ca.crt
{{- end }}
{{- end }}

{{- define "pacsflow.tlsVolumeMounts" -}}
{{- $k := .Values.kafka }}
{{- if and $k.tls.enabled $k.tls.caSecret.name }}
- name: kafka-ca
  mountPath: /etc/pacsflow/tls/kafka
  readOnly: true
{{- end }}
{{- if and $k.tls.enabled $k.tls.clientCertSecret.name }}
- name: kafka-client-cert
  mountPath: /etc/pacsflow/tls/kafka-client
  readOnly: true
{{- end }}
{{- if and .Values.objectStore.tls.enabled .Values.objectStore.tls.caSecret.name }}
- name: s3-ca
  mountPath: /etc/pacsflow/tls/s3
  readOnly: true
{{- end }}
{{- if .Values.index.tls.caSecret.name }}
- name: index-ca
  mountPath: /etc/pacsflow/tls/index
  readOnly: true
{{- end }}
{{- if and .Values.auth.enabled .Values.auth.caSecret.name }}
- name: idp-ca
  mountPath: /etc/pacsflow/tls/idp
  readOnly: true
{{- end }}
{{- if .Values.audit.caSecret.name }}
- name: audit-ca
  mountPath: /etc/pacsflow/tls/audit
  readOnly: true
{{- end }}
{{- end }}

{{/* Topology spread of a role: its own constraints, or zone and node spread. */}}
{{- define "pacsflow.topologySpread" -}}
{{- $values := index .root.Values .role }}
{{- $spread := .root.Values.topologySpread }}
{{- if $values.topologySpreadConstraints }}
{{- toYaml $values.topologySpreadConstraints }}
{{- else if $spread.enabled }}
{{- range $key, $when := dict "topology.kubernetes.io/zone" $spread.zoneWhenUnsatisfiable "kubernetes.io/hostname" $spread.hostnameWhenUnsatisfiable }}
- maxSkew: {{ $spread.maxSkew }}
  topologyKey: {{ $key }}
  whenUnsatisfiable: {{ $when }}
  labelSelector:
    matchLabels:
      {{- include "pacsflow.selectorLabels" $ | nindent 6 }}
  matchLabelKeys:
    - pod-template-hash
{{- end }}
{{- end }}
{{- end }}

{{/* Scheduling fields of a role's pod spec. */}}
{{- define "pacsflow.scheduling" -}}
{{- $values := index .root.Values .role }}
{{- with $values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (include "pacsflow.topologySpread" . | trim) }}
topologySpreadConstraints:
  {{- . | nindent 2 }}
{{- end }}
{{- end }}
