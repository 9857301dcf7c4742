{{- define "pave.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pave.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pave.labels" -}}
{{ include "pave.selectorLabels" . }}
{{ include "pave.commonLabels" . }}
{{- end -}}

{{- define "pave.commonLabels" -}}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: pave
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The helm test pod's: not the operator's selector labels, so the Service, the
PodDisruptionBudget and the NetworkPolicy leave it out. */}}
{{- define "pave.checkLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}-check
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: test
{{ include "pave.commonLabels" . }}
{{- end -}}

{{- define "pave.serviceAccountName" -}}
{{- default (include "pave.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The pod-level security context of every pave pod (operator and helm test). */}}
{{- define "pave.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The container-level security context of every pave container. */}}
{{- define "pave.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* The image of every pave container. */}}
{{- define "pave.image" -}}
"{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
{{- end -}}

{{/*
The API token for one container only (the pod does not automount one): short-lived
and rotated by the kubelet, with the cluster's CA and the namespace.
*/}}
{{- define "pave.tokenVolume" -}}
- name: token
  projected:
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3600
      - configMap:
          name: kube-root-ca.crt
          items: [{key: ca.crt, path: ca.crt}]
      - downwardAPI:
          items:
            - path: namespace
              fieldRef: {fieldPath: metadata.namespace}
{{- end -}}

{{- define "pave.tokenMount" -}}
- name: token
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end -}}
