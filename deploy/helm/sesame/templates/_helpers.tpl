{{/* Names and labels. */}}
{{- define "sesame.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sesame.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "sesame.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "sesame.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sesame.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "sesame.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: call with (list $ "broker"). */}}
{{- define "sesame.selector" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "sesame.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "sesame.secretName" -}}
{{- default (include "sesame.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "sesame.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The broker's config file: values.config with what the chart wires itself,
so that ports, probes, Services and NetworkPolicies cannot disagree with
it: each platform's listen address and signing key files, and the metrics
listener. Only the sections the broker reads (and the history and mail it
shares with the citizen space) go in, so that its pod needs no other
component's secret.
*/}}
{{- define "sesame.brokerConfig" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $b := required "config.broker is required" $cfg.broker -}}
{{- $_ := set $b "metrics_listen" (printf "0.0.0.0:%d" (int .Values.broker.metricsPort)) -}}
{{- range $p := $b.platforms -}}
{{- $w := get $.Values.broker.platforms $p.id -}}
{{- if not $w -}}
{{- fail (printf "config.broker.platforms: platform %q has no entry in broker.platforms (its port and signing keys)" $p.id) -}}
{{- end -}}
{{- $_ := set $p "listen" (printf "0.0.0.0:%d" (int $w.port)) -}}
{{- $files := list -}}
{{- range $w.signingKeys -}}
{{- $files = append $files (printf "%s/%s" $.Values.keysMountPath .) -}}
{{- end -}}
{{- $_ := set $p "signing_keys" $files -}}
{{- end -}}
{{- $out := dict "broker" $b -}}
{{- range $k := list "log" "history" "mail" -}}
{{- if hasKey $cfg $k -}}
{{- $_ := set $out $k (get $cfg $k) -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
The citizen space's config file: its section, the history and mail, and
the accounts and data scopes from the broker section (names only: the
citizen space must not hold the IdPs' client secrets).
*/}}
{{- define "sesame.dashboardConfig" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $d := required "config.dashboard is required with dashboard.enabled" $cfg.dashboard -}}
{{- $_ := set $d "listen" (printf "0.0.0.0:%d" (int .Values.dashboard.port)) -}}
{{- if and (not $d.identity_providers) $cfg.broker -}}
{{- $idps := list -}}
{{- range $cfg.broker.identity_providers -}}
{{- $idps = append $idps (dict "id" .id "name" (default .id .name)) -}}
{{- end -}}
{{- $_ := set $d "identity_providers" $idps -}}
{{- end -}}
{{- if and (not $d.data_scopes) $cfg.broker $cfg.broker.data_scopes -}}
{{- $_ := set $d "data_scopes" $cfg.broker.data_scopes -}}
{{- end -}}
{{- $out := dict "dashboard" $d -}}
{{- range $k := list "log" "history" "mail" -}}
{{- if hasKey $cfg $k -}}
{{- $_ := set $out $k (get $cfg $k) -}}
{{- end -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The environment variables a config file references without a default. */}}
{{- define "sesame.requiredVars" -}}
{{- $vars := list -}}
{{- range regexFindAll "\\$\\{[A-Za-z_][A-Za-z0-9_]*\\}" . -1 -}}
{{- $vars = append $vars (trimSuffix "}" (trimPrefix "${" .)) -}}
{{- end -}}
{{- $vars | uniq | sortAlpha | join "," -}}
{{- end -}}

{{/*
The env of a container: every variable its config references, from the
Secret. A variable the Secret lacks stops the pod at creation
(CreateContainerConfigError names it) rather than at the first login.
Call with (list $ configText).
*/}}
{{- define "sesame.env" -}}
{{- $ := index . 0 -}}
{{- $vars := include "sesame.requiredVars" (index . 1) -}}
{{- if $vars }}
{{- range splitList "," $vars }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ include "sesame.secretName" $ }}
      key: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "sesame.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "sesame.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
