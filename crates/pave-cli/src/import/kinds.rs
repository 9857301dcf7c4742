//! What each Backstage kind becomes: a Component, Group, User, System, Domain, API
//! or Resource of pave's, read field by field as the kind's CRD describes its spec.
//!
//! One reader serves every kind. The CRD says which spec fields exist, which are
//! required, what shape each has (a string, a list of strings, a mapping such as
//! `profile`) and which hold entity references, so a kind pave-api gains a field for
//! is imported without a change here, and no kind can be read differently from what
//! the API server checks. Backstage's spec field names are pave's. What differs per
//! kind is written out below: an API's `definition`, which is either the text or a
//! placeholder Backstage resolves when it reads the file.
//!
//! What is common to every kind comes from `metadata` (see `metadata.rs`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResourceExt;
use pave_api::{ApiEntity, CatalogEntity, Component, Domain, Group, Resource, System, User};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json, json};
use serde_yaml::{Mapping, Value};

use super::checks::{self, SpecSchema, backstage_path, is_reference};
use super::findings::{Findings, a, describe};
use super::location::{self, Location};
use super::metadata::{self, Metadata};
use crate::lines::FieldPath;

/// The Backstage API versions whose entities pave reads.
const BACKSTAGE_API_VERSIONS: [&str; 2] = ["backstage.io/v1alpha1", "backstage.io/v1beta1"];

/// Spec fields of pave's that are not Backstage's: `title`, `description`, `tags` and
/// `links` are read from `metadata`, and `properties` is pave's own. A Backstage file
/// that has them in `spec` has something Backstage ignores too.
const NOT_FROM_BACKSTAGE_SPEC: [&str; 5] = ["title", "description", "tags", "links", "properties"];

/// A pave object made from one Backstage entity.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Entity {
    Component(Component),
    Group(Group),
    User(User),
    System(System),
    Domain(Domain),
    Api(ApiEntity),
    Resource(Resource),
}

/// `$body` for whichever object `$entity` holds, bound to `$inner`.
macro_rules! each {
    ($entity:expr, $inner:ident => $body:expr) => {
        match $entity {
            Entity::Component($inner) => $body,
            Entity::Group($inner) => $body,
            Entity::User($inner) => $body,
            Entity::System($inner) => $body,
            Entity::Domain($inner) => $body,
            Entity::Api($inner) => $body,
            Entity::Resource($inner) => $body,
        }
    };
}

impl Entity {
    /// The kind, as Backstage and the CRD name it (`Component`, `API`).
    pub fn kind(&self) -> &'static str {
        match self {
            Entity::Component(_) => "Component",
            Entity::Group(_) => "Group",
            Entity::User(_) => "User",
            Entity::System(_) => "System",
            Entity::Domain(_) => "Domain",
            Entity::Api(_) => "API",
            Entity::Resource(_) => "Resource",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        each!(self, object => &object.metadata)
    }

    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        each!(self, object => &mut object.metadata)
    }

    /// The entity reference, `kind:namespace/name`; `default_namespace` stands in for
    /// a namespace the object does not name.
    pub fn reference(&self, default_namespace: &str) -> String {
        let meta = self.metadata();
        reference(
            self.kind(),
            meta.namespace.as_deref().unwrap_or(default_namespace),
            meta.name.as_deref().unwrap_or_default(),
        )
    }
}

impl Entity {
    /// The entity as the catalog graph holds it: its reference and its reference
    /// fields; `default_namespace` stands in for a namespace the object does not name.
    pub fn catalog_entry(
        &self,
        default_namespace: &str,
    ) -> (pave_catalog::EntityRef, pave_catalog::Refs) {
        fn entry<K: CatalogEntity>(
            object: &K,
            meta: &ObjectMeta,
            namespace: &str,
        ) -> (pave_catalog::EntityRef, pave_catalog::Refs) {
            let name = meta.name.as_deref().unwrap_or_default();
            (
                pave_catalog::EntityRef::new(K::KIND, namespace, name),
                object.refs(),
            )
        }
        let meta = self.metadata();
        let namespace = meta.namespace.as_deref().unwrap_or(default_namespace);
        each!(self, object => entry(object, meta, namespace))
    }

    /// A pave object of a catalog kind, as JSON (a manifest read from a file).
    pub fn from_pave_object(value: Json) -> Result<Entity, String> {
        fn read<K: DeserializeOwned>(value: Json, wrap: fn(K) -> Entity) -> Result<Entity, String> {
            serde_json::from_value(value)
                .map(wrap)
                .map_err(|e| e.to_string())
        }
        match value["kind"].as_str().unwrap_or_default() {
            "Component" => read(value, Entity::Component),
            "Group" => read(value, Entity::Group),
            "User" => read(value, Entity::User),
            "System" => read(value, Entity::System),
            "Domain" => read(value, Entity::Domain),
            "API" => read(value, Entity::Api),
            "Resource" => read(value, Entity::Resource),
            other => Err(format!("{other:?} is not a catalog kind")),
        }
    }
}

fn reference(kind: &str, namespace: &str, name: &str) -> String {
    format!("{}:{namespace}/{name}", kind.to_ascii_lowercase())
}

/// One kind pave imports: its spec's schema, and how its JSON becomes an [`Entity`].
struct Kind {
    schema: SpecSchema,
    build: Box<dyn Fn(Json) -> serde_json::Result<Entity>>,
}

impl Kind {
    fn of<K>(wrap: fn(K) -> Entity) -> Self
    where
        K: CustomResourceExt + DeserializeOwned + 'static,
    {
        Kind {
            schema: SpecSchema::of(&K::crd()),
            build: Box::new(move |json| serde_json::from_value::<K>(json).map(wrap)),
        }
    }

    fn name(&self) -> &str {
        self.schema.kind()
    }
}

/// Every kind pave imports, with its schema read once per import.
pub struct Kinds(Vec<Kind>);

impl Kinds {
    pub fn new() -> Self {
        Kinds(vec![
            Kind::of(Entity::Component),
            Kind::of(Entity::Group),
            Kind::of(Entity::User),
            Kind::of(Entity::System),
            Kind::of(Entity::Domain),
            Kind::of(Entity::Api),
            Kind::of(Entity::Resource),
        ])
    }

    fn get(&self, name: &str) -> Option<&Kind> {
        self.0.iter().find(|kind| kind.name() == name)
    }

    /// The kind (or `Location`) that `name` would be with the right capitals.
    fn spelled(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .map(Kind::name)
            .chain(["Location"])
            .find(|known| known.eq_ignore_ascii_case(name))
    }
}

/// What one document holds.
pub enum Read {
    Entity(Box<Entity>),
    Location(Location),
    /// Nothing pave imports: an error, or a kind pave skips.
    Nothing,
}

/// Reads one parsed document as a Backstage entity.
pub fn document(
    value: &Value,
    namespace: Option<&str>,
    kinds: &Kinds,
    findings: &mut Findings<'_>,
) -> Read {
    let root = FieldPath::default();
    let Value::Mapping(entity) = value else {
        findings.error(
            &root,
            format!(
                "expected a Backstage entity (a mapping with apiVersion, kind, metadata \
                 and spec), found {}",
                describe(value)
            ),
        );
        return Read::Nothing;
    };
    let Some(version) = api_version(entity, findings) else {
        return Read::Nothing;
    };
    let kind_path = FieldPath::of(&["kind"]);
    let Some(name) = findings.string(entity.get("kind"), &kind_path) else {
        if !findings.already_wrong(&kind_path) {
            findings.error(&root, "kind is missing".to_owned());
        }
        return Read::Nothing;
    };
    let known = name == "Location" || kinds.get(&name).is_some();
    if known && !BACKSTAGE_API_VERSIONS.contains(&version.as_str()) {
        findings.error(
            &FieldPath::of(&["apiVersion"]),
            format!(
                "apiVersion {version:?}: expected {}",
                BACKSTAGE_API_VERSIONS.join(" or ")
            ),
        );
        return Read::Nothing;
    }
    if name == "Location" {
        return location::read(entity, findings).map_or(Read::Nothing, Read::Location);
    }
    if let Some(kind) = kinds.get(&name) {
        return convert(kind, entity, namespace, findings)
            .map_or(Read::Nothing, |entity| Read::Entity(Box::new(entity)));
    }
    if let Some(known) = kinds.spelled(&name) {
        findings.error(
            &kind_path,
            format!("kind {name:?}: Backstage kinds are case-sensitive; write {known}"),
        );
        return Read::Nothing;
    }
    skip(&name, entity, findings);
    Read::Nothing
}

/// The note for an entity of a kind pave does not have. Such kinds have their own
/// apiVersion (a Template's is the scaffolder's), so whatever it is, the entity is
/// only skipped.
fn skip(kind: &str, entity: &Mapping, findings: &mut Findings<'_>) {
    let name = entity
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(without a name)");
    findings.note(
        &FieldPath::default(),
        format!(
            "skipped {kind} {name}: pave has no kind {kind}; it imports Components, APIs, \
             Groups, Users, Systems, Domains and Resources, and follows Locations"
        ),
    );
}

/// The entity's `apiVersion`, unless it is missing, not a string, or pave's own
/// (then that is reported).
fn api_version(entity: &Mapping, findings: &mut Findings<'_>) -> Option<String> {
    let path = FieldPath::of(&["apiVersion"]);
    let expected = format!("expected {}", BACKSTAGE_API_VERSIONS.join(" or "));
    match findings.string(entity.get("apiVersion"), &path) {
        None if findings.already_wrong(&path) => None,
        None => {
            findings.error(
                &FieldPath::default(),
                format!("apiVersion is missing; {expected}"),
            );
            None
        }
        Some(version) if version.starts_with(&format!("{}/", pave_api::GROUP)) => {
            findings.error(
                &path,
                format!(
                    "apiVersion {version:?}: {expected} (this is already a pave object: \
                     apply it as it is)"
                ),
            );
            None
        }
        Some(version) => Some(version),
    }
}

/// Reads a Backstage entity of a kind pave has into the pave object, reporting every
/// problem; `None` when it cannot be built.
fn convert(
    kind: &Kind,
    entity: &Mapping,
    namespace: Option<&str>,
    findings: &mut Findings<'_>,
) -> Option<Entity> {
    findings.warn_unknown(
        entity,
        &FieldPath::default(),
        &["apiVersion", "kind", "metadata", "spec"],
    );
    let mut metadata = metadata::read(kind.name(), entity, namespace, findings);
    let mut spec = spec(kind, entity, namespace, findings)?;
    if kind.name() == "API" {
        let own = reference(
            kind.name(),
            metadata.namespace.as_deref().unwrap_or("default"),
            metadata.name.as_deref().unwrap_or("(without a name)"),
        );
        definition(&mut spec, &own, findings);
    }
    required(kind, &spec, findings);
    // Where pave keeps Backstage's metadata.title, description, tags and links.
    spec.extend(std::mem::take(&mut metadata.about));

    let json = Json::Object(spec);
    let violations = kind
        .schema
        .violations(&json, |path| findings.already_wrong(&backstage_path(path)));
    for violation in violations {
        let path = backstage_path(&violation.path);
        findings.error(&path, format!("{path}: {}", violation.message));
    }
    if findings.has_errors() {
        return None;
    }

    let name = metadata.name.take()?;
    let object = object(kind.name(), name, metadata, json);
    match (kind.build)(object) {
        Ok(entity) => Some(entity),
        Err(error) => {
            // The checks above are meant to catch everything the type refuses; this
            // says which one they missed instead of printing a broken object.
            findings.error(
                &FieldPath::of(&["spec"]),
                format!("spec: not {}: {error}", a(&format!("pave {}", kind.name()))),
            );
            None
        }
    }
}

/// The pave object, as JSON for its type to read.
fn object(kind: &str, name: String, metadata: Metadata, spec: Json) -> Json {
    let mut meta = Map::new();
    meta.insert("name".into(), Json::String(name));
    if let Some(namespace) = metadata.namespace {
        meta.insert("namespace".into(), json!(namespace));
    }
    if let Some(labels) = metadata.labels {
        meta.insert("labels".into(), json!(labels));
    }
    if let Some(annotations) = metadata.annotations {
        meta.insert("annotations".into(), json!(annotations));
    }
    json!({
        "apiVersion": format!("{}/{}", pave_api::GROUP, pave_api::VERSION),
        "kind": kind,
        "metadata": meta,
        "spec": spec,
    })
}

/// The Backstage spec as pave's spec JSON, every field read as the CRD describes it.
/// `None` when there is no spec to read.
fn spec(
    kind: &Kind,
    entity: &Mapping,
    namespace: Option<&str>,
    findings: &mut Findings<'_>,
) -> Option<Map<String, Json>> {
    let spec_path = FieldPath::of(&["spec"]);
    let empty = Mapping::new();
    let backstage = match findings.mapping(entity.get("spec"), &spec_path) {
        Some(spec) => spec,
        None if findings.already_wrong(&spec_path) => return None,
        // A kind that requires nothing (User) may leave its spec out.
        None if kind.schema.required().is_empty() => &empty,
        None => {
            let needed: Vec<String> = kind
                .schema
                .required()
                .iter()
                .map(|field| format!("spec.{field}"))
                .collect();
            findings.error(
                &FieldPath::default(),
                format!(
                    "spec is missing; {} needs {}",
                    a(kind.name()),
                    and_list(&needed)
                ),
            );
            return None;
        }
    };
    let mut spec = Map::new();
    for (key, value) in findings.keyed(backstage, &spec_path) {
        let path = spec_path.key(&key);
        let schema = kind
            .schema
            .field(&key)
            .filter(|_| !NOT_FROM_BACKSTAGE_SPEC.contains(&key.as_str()));
        match schema {
            None => findings.left_out(&path),
            Some(schema) => {
                if let Some(value) = field(value, schema, &path, namespace, findings) {
                    spec.insert(key, value);
                }
            }
        }
    }
    Some(spec)
}

/// `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// One field's value as JSON, read as `schema` describes it; `None` when it is absent,
/// null, an empty list, or wrong (and then reported).
fn field(
    value: &Value,
    schema: &Json,
    path: &FieldPath,
    namespace: Option<&str>,
    findings: &mut Findings<'_>,
) -> Option<Json> {
    let moved = |text: String, schema: &Json| match namespace {
        Some(namespace) if is_reference(schema) => in_namespace(&text, namespace),
        _ => text,
    };
    match schema.get("type").and_then(Json::as_str) {
        Some("string") => findings
            .string(Some(value), path)
            .map(|text| Json::String(moved(text, schema))),
        Some("array") if schema["items"]["type"] == "string" => {
            let items: Vec<Json> = findings
                .strings(Some(value), path)
                .into_iter()
                .map(|text| Json::String(moved(text, &schema["items"])))
                .collect();
            (!items.is_empty()).then_some(Json::Array(items))
        }
        Some("object") if schema.get("properties").is_some() => {
            let mapping = findings.mapping(Some(value), path)?;
            let mut object = Map::new();
            for (key, value) in findings.keyed(mapping, path) {
                let path = path.key(&key);
                match schema["properties"].get(&key) {
                    None => findings.left_out(&path),
                    Some(inner) => {
                        if let Some(value) = field(value, inner, &path, namespace, findings) {
                            object.insert(key, value);
                        }
                    }
                }
            }
            Some(Json::Object(object))
        }
        // A field the CRD leaves open (an API's `definition`): kept as written, and
        // checked by the kind's own rules.
        _ if value.is_null() => None,
        _ => match serde_json::to_value(value) {
            Ok(json) => Some(json),
            Err(error) => {
                findings.error(path, format!("{path}: {error}"));
                None
            }
        },
    }
}

/// `reference` pointed at `namespace` when it names a namespace of its own.
///
/// `--namespace` moves every imported entity into one namespace; a reference that
/// names the namespace the entity it refers to had in Backstage would otherwise point
/// where nothing is any more. A reference without a namespace already means the
/// referring entity's own, so it moves along unchanged, and one that is not a
/// reference at all is left for the schema check to report.
pub fn in_namespace(reference: &str, namespace: &str) -> String {
    let (kind, rest) = match reference.split_once(':') {
        Some((kind, rest)) if !kind.contains('/') => (Some(kind), rest),
        _ => (None, reference),
    };
    let Some((_, name)) = rest.split_once('/') else {
        return reference.to_owned();
    };
    match kind {
        Some(kind) => format!("{kind}:{namespace}/{name}"),
        None => format!("{namespace}/{name}"),
    }
}

/// Every required field of the kind's spec is there, and a required string is not
/// empty (Backstage's schemas say `minLength: 1` for each). An API's definition is no
/// string field: its empty text is the one `definition` gives an mcp-server API.
fn required(kind: &Kind, spec: &Map<String, Json>, findings: &mut Findings<'_>) {
    for name in kind.schema.required() {
        let path = FieldPath::of(&["spec", name]);
        let is_string = kind
            .schema
            .field(name)
            .is_some_and(|schema| schema["type"] == "string");
        let missing = match spec.get(name) {
            None | Some(Json::Null) => true,
            Some(Json::String(text)) => is_string && text.is_empty(),
            Some(_) => false,
        };
        if missing && !findings.already_wrong(&path) {
            findings.error(
                &path,
                format!("{path} is missing; {} needs one", a(kind.name())),
            );
        }
    }
}

/// An API's `definition`: the text, kept; or a placeholder (`$text: ./openapi.yaml`),
/// kept as written with a note, since Backstage would read what it points at and pave
/// does not fetch anything. Backstage's `mcp-server` APIs have no definition (they
/// have `remotes` instead); pave's API needs one, so it gets an empty text and a note
/// that says so.
fn definition(spec: &mut Map<String, Json>, own: &str, findings: &mut Findings<'_>) {
    let path = FieldPath::of(&["spec", "definition"]);
    if findings.already_wrong(&path) {
        return;
    }
    match spec.get("definition") {
        None if spec.get("type").and_then(Json::as_str) == Some("mcp-server") => {
            spec.insert("definition".into(), Json::String(String::new()));
            findings.note(
                &FieldPath::of(&["spec"]),
                format!(
                    "{own}: an mcp-server API has no definition in Backstage; pave needs \
                     one, so it is left empty"
                ),
            );
        }
        None => {}
        Some(definition) => {
            if let Some(problem) = checks::definition_problem(definition) {
                findings.error(&path, format!("{path}: {problem}"));
            } else if let Json::Object(placeholder) = definition
                && let Some((key, target)) = placeholder.iter().next()
            {
                let target = target.as_str().unwrap_or_default();
                findings.note(
                    &path,
                    format!(
                        "{own}: definition is a {key} reference to {target}, kept as \
                         written (not fetched)"
                    ),
                );
            }
        }
    }
}
