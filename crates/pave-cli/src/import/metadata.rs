//! What `metadata` gives every kind: the name and namespace, labels and annotations
//! (kept as Kubernetes metadata, and so held to Kubernetes' rules for them), and
//! `title`, `description`, `tags` and `links`, which pave keeps in `spec` (the
//! flattened `about` of the new kinds, the Component's own fields).

use std::collections::BTreeMap;

use pave_api::component::Link;
use serde_json::{Map, Value as Json, json};
use serde_yaml::{Mapping, Value};

use super::checks;
use super::findings::{Findings, a, describe};
use crate::lines::FieldPath;

/// The `metadata` fields pave keeps.
const METADATA_FIELDS: [&str; 8] = [
    "name",
    "namespace",
    "title",
    "description",
    "labels",
    "annotations",
    "tags",
    "links",
];

/// What `metadata` gives every kind.
pub struct Metadata {
    pub name: Option<String>,
    /// The namespace the object goes to: `--namespace`, else the file's.
    pub namespace: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub annotations: Option<BTreeMap<String, String>>,
    /// `title`, `description`, `tags` and `links`, as pave's spec fields.
    pub about: Map<String, Json>,
}

/// Reads the `metadata` of an entity of `kind`; `namespace` is `--namespace`, which
/// replaces the file's.
pub fn read(
    kind: &str,
    entity: &Mapping,
    namespace: Option<&str>,
    findings: &mut Findings<'_>,
) -> Metadata {
    let root = FieldPath::default();
    let meta = FieldPath::of(&["metadata"]);
    let metadata = findings.mapping(entity.get("metadata"), &meta);
    if metadata.is_none() && !findings.already_wrong(&meta) {
        findings.error(
            &root,
            format!("metadata is missing; {} needs metadata.name", a(kind)),
        );
    }
    let empty = Mapping::new();
    let metadata = metadata.unwrap_or(&empty);
    let field = |name: &str| metadata.get(name);

    let name_path = meta.key("name");
    let name = findings.string(field("name"), &name_path);
    if name.as_deref().is_none_or(str::is_empty) && !findings.already_wrong(&name_path) {
        findings.error(
            &name_path,
            format!("{name_path} is missing; {} needs one", a(kind)),
        );
    } else if let Some(name) = &name
        && let Some(problem) = checks::name_problem(name, kind)
    {
        findings.error(&name_path, problem);
    }

    let namespace_path = meta.key("namespace");
    let own_namespace = findings.string(field("namespace"), &namespace_path);
    // `--namespace` wins over the file, so the file's namespace only matters without it.
    if namespace.is_none()
        && let Some(own) = &own_namespace
        && let Some(problem) = checks::namespace_problem(own)
    {
        findings.error(
            &namespace_path,
            format!("metadata.namespace: {problem}; or choose one with --namespace"),
        );
    }

    let mut about = Map::new();
    for key in ["title", "description"] {
        if let Some(text) = findings.string(field(key), &meta.key(key)) {
            about.insert(key.into(), Json::String(text));
        }
    }
    let tags = findings.strings(field("tags"), &meta.key("tags"));
    if !tags.is_empty() {
        about.insert("tags".into(), json!(tags));
    }
    let links = links(field("links"), &meta.key("links"), findings);
    if !links.is_empty() {
        about.insert("links".into(), json!(links));
    }
    let labels = findings.string_map(field("labels"), &meta.key("labels"));
    let annotations = findings.string_map(field("annotations"), &meta.key("annotations"));
    kubernetes_metadata(labels.as_ref(), annotations.as_ref(), &meta, findings);
    findings.warn_unknown(metadata, &meta, &METADATA_FIELDS);
    Metadata {
        name,
        namespace: namespace.map(str::to_owned).or(own_namespace),
        labels,
        annotations,
        about,
    }
}

/// Labels and annotations the API server would refuse: Backstage has the same rules,
/// but a file Backstage never read may break them, and one bad key fails the object.
fn kubernetes_metadata(
    labels: Option<&BTreeMap<String, String>>,
    annotations: Option<&BTreeMap<String, String>>,
    meta: &FieldPath,
    findings: &mut Findings<'_>,
) {
    for (key, value) in labels.into_iter().flatten() {
        let path = meta.key("labels").key(key);
        if let Some(problem) =
            checks::key_problem(key).or_else(|| checks::label_value_problem(value))
        {
            findings.error(&path, format!("{path}: {problem}"));
        }
    }
    for key in annotations.into_iter().flatten().map(|(key, _)| key) {
        let path = meta.key("annotations").key(key);
        if let Some(problem) = checks::key_problem(key) {
            findings.error(&path, format!("{path}: {problem}"));
        }
    }
    if let Some(problem) = checks::annotations_problem(annotations.into_iter().flatten()) {
        findings.error(
            &meta.key("annotations"),
            format!("metadata.annotations {problem}"),
        );
    }
}

/// `metadata.links`: each needs a `url`; `title`, `icon` and `type` are kept.
fn links(value: Option<&Value>, path: &FieldPath, findings: &mut Findings<'_>) -> Vec<Link> {
    let items = match value {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Sequence(items)) => items,
        Some(other) => {
            findings.error(
                path,
                format!(
                    "{path}: expected a list of links, found {}",
                    describe(other)
                ),
            );
            return Vec::new();
        }
    };
    let mut links = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let path = path.index(index);
        let Some(link) = findings.mapping(Some(item), &path) else {
            if item.is_null() {
                findings.error(&path, format!("{path} is empty"));
            }
            continue;
        };
        let url_path = path.key("url");
        let url = findings.string(link.get("url"), &url_path);
        match &url {
            None if !findings.already_wrong(&url_path) => {
                findings.error(&path, format!("{url_path} is missing; a link needs one"));
            }
            Some(url) => {
                if let Some(problem) = checks::url_problem(url) {
                    findings.error(&url_path, format!("{url_path}: {problem}"));
                }
            }
            None => {}
        }
        let title = findings.string(link.get("title"), &path.key("title"));
        let icon = findings.string(link.get("icon"), &path.key("icon"));
        let type_ = findings.string(link.get("type"), &path.key("type"));
        findings.warn_unknown(link, &path, &["url", "title", "icon", "type"]);
        if let Some(url) = url {
            links.push(Link {
                url,
                title,
                icon,
                type_,
            });
        }
    }
    links
}
