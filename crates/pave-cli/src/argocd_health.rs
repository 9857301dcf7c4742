//! `kubectl pave argocd-health`: the `argocd-cm` patch that gives Argo CD a health
//! check for each pave kind.
//!
//! Argo CD shows no health for a custom resource unless a Lua script for its group and
//! kind is configured under `resource.customizations.health.<group>_<Kind>` in
//! `argocd-cm`. The scripts live in `argocd/health/<group>/<Kind>/health.lua`, laid
//! out as Argo CD's own `resource_customizations/` are, with their tests beside them
//! (run by `tests/argocd_health.rs`); they are compiled into the binary, so what this
//! prints is exactly what those tests ran.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use pave_api::{ApiEntity, Component, DeveloperEnvironment, Domain, Group, Scorecard};
use pave_api::{System, User};
use serde::Serialize;

/// The namespace Argo CD's install manifests put `argocd-cm` in.
pub const DEFAULT_NAMESPACE: &str = "argocd";

/// How the patch is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

/// The check every catalog kind around Components shares (their directories link
/// to it): their status has the same shape.
const CATALOG_ENTITY: &str = include_str!("../argocd/health/platform.pave.dev/Group/health.lua");

/// `(kind, Lua script)` for every pave kind, all of group [`pave_api::GROUP`], in
/// kind order.
pub fn checks() -> Vec<(String, &'static str)> {
    let mut checks = vec![
        (
            Component::kind(&()).into_owned(),
            include_str!("../argocd/health/platform.pave.dev/Component/health.lua"),
        ),
        (
            DeveloperEnvironment::kind(&()).into_owned(),
            include_str!("../argocd/health/platform.pave.dev/DeveloperEnvironment/health.lua"),
        ),
        (
            Scorecard::kind(&()).into_owned(),
            include_str!("../argocd/health/platform.pave.dev/Scorecard/health.lua"),
        ),
    ];
    for kind in [
        Group::kind(&()),
        User::kind(&()),
        System::kind(&()),
        Domain::kind(&()),
        ApiEntity::kind(&()),
        pave_api::Resource::kind(&()),
    ] {
        checks.push((kind.into_owned(), CATALOG_ENTITY));
    }
    checks.sort();
    checks
}

/// The `argocd-cm` key Argo CD reads a kind's health check from.
pub fn key(kind: &str) -> String {
    format!("resource.customizations.health.{}_{kind}", pave_api::GROUP)
}

/// `argocd-cm` with only pave's keys: applied server-side it adds them to the
/// ConfigMap Argo CD already has and leaves every other key alone.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigMapPatch {
    api_version: &'static str,
    kind: &'static str,
    metadata: ObjectMeta,
    data: BTreeMap<String, String>,
}

fn patch(namespace: &str) -> ConfigMapPatch {
    ConfigMapPatch {
        api_version: "v1",
        kind: "ConfigMap",
        metadata: ObjectMeta {
            name: Some("argocd-cm".into()),
            namespace: Some(namespace.into()),
            // Argo CD's own label on its ConfigMaps; with it the patch creates an
            // argocd-cm that Argo CD recognises if there was none.
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/part-of".into(),
                "argocd".into(),
            )])),
            ..ObjectMeta::default()
        },
        data: checks()
            .into_iter()
            .map(|(kind, script)| (key(&kind), script.to_owned()))
            .collect(),
    }
}

/// The patch as `kubectl pave argocd-health` prints it.
pub fn render(namespace: &str, format: Format) -> String {
    let patch = patch(namespace);
    match format {
        Format::Yaml => serde_yaml::to_string(&patch).expect("the patch serialises to YAML"),
        Format::Json => {
            let mut json =
                serde_json::to_string_pretty(&patch).expect("the patch serialises to JSON");
            json.push('\n');
            json
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_per_kind_of_pave_group() {
        let keys: Vec<String> = checks().iter().map(|(kind, _)| key(kind)).collect();
        assert_eq!(
            keys,
            [
                "resource.customizations.health.platform.pave.dev_API",
                "resource.customizations.health.platform.pave.dev_Component",
                "resource.customizations.health.platform.pave.dev_DeveloperEnvironment",
                "resource.customizations.health.platform.pave.dev_Domain",
                "resource.customizations.health.platform.pave.dev_Group",
                "resource.customizations.health.platform.pave.dev_Resource",
                "resource.customizations.health.platform.pave.dev_Scorecard",
                "resource.customizations.health.platform.pave.dev_System",
                "resource.customizations.health.platform.pave.dev_User",
            ]
        );
    }

    #[test]
    fn every_crd_has_a_check() {
        let mut crd_kinds: Vec<String> = pave_api::crds()
            .into_iter()
            .map(|crd| {
                assert_eq!(crd.spec.group, pave_api::GROUP);
                crd.spec.names.kind
            })
            .collect();
        crd_kinds.sort();
        let kinds: Vec<String> = checks().into_iter().map(|(kind, _)| kind).collect();
        assert_eq!(kinds, crd_kinds);
    }
}
