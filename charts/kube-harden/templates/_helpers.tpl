{{/*
Shared pieces of kube-harden's templates. Object names are fixed ("kube-harden", as in
manifests/): the webhook configuration is cluster-wide and the server's flags and RBAC name it,
so a cluster has one kube-harden.
*/}}

{{/* The namespace every namespaced object goes to. */}}
{{- define "kube-harden.namespace" -}}
{{- .Values.namespace.name -}}
{{- end -}}

{{/* The one label every object carries (the selectors use it too). */}}
{{- define "kube-harden.labels" -}}
app.kubernetes.io/name: kube-harden
{{- end -}}

{{/* "true" when kube-harden manages its own certificates (--manage-certs). */}}
{{- define "kube-harden.selfManaged" -}}
{{- if eq .Values.certificates.mode "self-managed" -}}true{{- end -}}
{{- end -}}

{{/* The container image: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "kube-harden.image" -}}
{{- with .Values.image -}}
{{- if .digest -}}
{{ .repository }}@{{ .digest }}
{{- else -}}
{{ .repository }}:{{ .tag | default $.Chart.AppVersion }}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The username the API server gives kube-harden's ServiceAccount. */}}
{{- define "kube-harden.serviceAccountUser" -}}
system:serviceaccount:{{ include "kube-harden.namespace" . }}:kube-harden
{{- end -}}

{{/*
What the schema cannot say clearly. Included by the templates that depend on it, so that
`helm install` stops before anything is created.
*/}}
{{- define "kube-harden.validate" -}}
{{- if and (include "kube-harden.selfManaged" .) (not .Values.networkPolicy.apiServerCIDRs) -}}
{{- fail "networkPolicy.apiServerCIDRs is required with certificates.mode=self-managed: the API server's addresses, the only egress kube-harden's NetworkPolicy allows, e.g. --set 'networkPolicy.apiServerCIDRs={172.18.0.2/32}' (kubectl get endpointslices -n default -l kubernetes.io/service-name=kubernetes lists them; docs/install.md)" -}}
{{- end -}}
{{- if and .Values.namespace.create (eq .Release.Namespace .Values.namespace.name) -}}
{{- fail (printf "the chart creates namespace %s itself (namespace.create=true, with its Pod Security labels), so the release cannot be stored in it: install into another namespace (e.g. -n kube-system, or none: default), or create the namespace yourself and set namespace.create=false" .Values.namespace.name) -}}
{{- end -}}
{{- end -}}
