//! Backstage's own example catalog (`tests/catalog/backstage-examples/`, entered from
//! its two root Locations as upstream intends) imports completely: every entity
//! becomes its pave object, and the only warnings are for the fields its
//! `UNRESOLVED.md` lists as beyond pave's (`spec.remotes` of the MCP server API,
//! `spec.apiConsumedBy` of artist-lookup; a System's `spec.type` is pave's too).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pave_api::Definition;

use super::*;

/// The example catalog's directory, as the test names it (so messages name it so).
fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/catalog/backstage-examples")
}

fn import_examples(namespace: Option<&str>) -> Outcome {
    import_files(
        &[
            examples().join("all.yaml"),
            examples().join("acme-corp.yaml"),
        ],
        namespace,
    )
}

fn name(file: &str) -> String {
    examples().join(file).display().to_string()
}

/// How many entities of each kind the directory's files hold, counted without the
/// importer: every document of every YAML file but the API definitions.
fn kinds_in_the_files() -> BTreeMap<String, usize> {
    fn walk(dir: &Path, counts: &mut BTreeMap<String, usize>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                walk(&path, counts);
            } else if file.ends_with(".yaml") && !file.ends_with(".oas.yaml") {
                let text = std::fs::read_to_string(&path).unwrap();
                for document in serde_yaml::Deserializer::from_str(&text) {
                    let value: Value = serde::Deserialize::deserialize(document).unwrap();
                    let kind = value["kind"].as_str().unwrap().to_owned();
                    *counts.entry(kind).or_default() += 1;
                }
            }
        }
    }
    let mut counts = BTreeMap::new();
    walk(&examples(), &mut counts);
    counts
}

#[test]
fn every_entity_of_the_example_catalog_is_imported() {
    let outcome = import_examples(None);
    assert_eq!(outcome.errors(), 0, "{:#?}", messages(&outcome));
    let mut imported: BTreeMap<String, usize> = BTreeMap::new();
    for entity in &outcome.entities {
        *imported.entry(entity.kind().to_owned()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [
        ("User", 17),
        ("Component", 13),
        ("API", 10),
        ("Group", 8),
        ("Domain", 3),
        ("System", 3),
        ("Resource", 1),
    ]
    .into_iter()
    .map(|(kind, count)| (kind.to_owned(), count))
    .collect();
    assert_eq!(imported, expected);
    // The files hold exactly these and the 8 Locations, which produce nothing, so
    // every file was reached.
    let mut in_files = expected.clone();
    in_files.insert("Location".to_owned(), 8);
    assert_eq!(kinds_in_the_files(), in_files);

    let yaml = outcome.manifests().expect("nothing is wrong");
    assert_eq!(serde_yaml::Deserializer::from_str(&yaml).count(), 55);
}

#[test]
fn only_the_fields_beyond_paves_are_warned_about() {
    let outcome = import_examples(None);
    let of = |severity: Severity| -> Vec<String> {
        outcome
            .diagnostics
            .iter()
            .filter(|d| d.severity == severity)
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        of(Severity::Warning),
        [
            format!(
                "{}:13: warning: spec.remotes: pave has no field for it, so it is left out",
                name("apis/backstage-mcp-server-api.yaml")
            ),
            format!(
                "{}:40: warning: spec.apiConsumedBy: pave has no field for it, so it is left out",
                name("components/artist-lookup-component.yaml")
            ),
        ]
    );
    let reference = |api: &str, target: &str| {
        format!(
            "api:default/{api}: definition is a $text reference to {target}, kept as written \
             (not fetched)"
        )
    };
    let github = "https://github.com/APIs-guru/openapi-directory/blob";
    assert_eq!(
        of(Severity::Note),
        [
            format!(
                "{}:9: api:default/backstage-mcp-server: an mcp-server API has no definition \
                 in Backstage; pave needs one, so it is left empty",
                name("apis/backstage-mcp-server-api.yaml")
            ),
            format!(
                "{}:20: {}",
                name("apis/petstore-webhook-api.yaml"),
                reference("petstore-webhook", "./petstore-webhook.oas.yaml")
            ),
            format!(
                "{}:16: {}",
                name("apis/spotify-api.yaml"),
                reference(
                    "spotify",
                    &format!(
                        "{github}/dab6854d4d599aafb0eb36e6c7ae1fe0c37509b7/APIs/spotify.com/\
                         2021.4.2/openapi.yaml"
                    )
                )
            ),
            format!(
                "{}:10: {}",
                name("apis/wayback-archive-api.yaml"),
                reference(
                    "wayback-archive",
                    &format!("{github}/main/APIs/archive.org/wayback/1.0.0/openapi.yaml")
                )
            ),
            format!(
                "{}:10: {}",
                name("apis/wayback-search-api.yaml"),
                reference(
                    "wayback-search",
                    &format!("{github}/main/APIs/archive.org/search/1.0.0/openapi.yaml")
                )
            ),
        ]
    );
    assert_eq!(outcome.diagnostics.len(), 7, "{:#?}", messages(&outcome));
}

#[test]
fn the_example_catalog_keeps_what_unresolved_md_describes() {
    let outcome = import_examples(None);
    let find = |kind: &str, namespace: Option<&str>, name: &str| {
        outcome
            .entities
            .iter()
            .find(|e| {
                let meta = e.metadata();
                e.kind() == kind
                    && meta.namespace.as_deref() == namespace
                    && meta.name.as_deref() == Some(name)
            })
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    // A System's type is a field of pave's, not one beyond it.
    let Entity::System(system) = find("System", None, "audio-playback") else {
        panic!("not a System");
    };
    assert_eq!(system.spec.type_.as_deref(), Some("feature-set"));
    // The one reference that crosses namespaces, and the guest defined twice.
    let Entity::User(guest) = find("User", Some("development"), "guest") else {
        panic!("not a User");
    };
    assert_eq!(guest.spec.member_of, ["group:default/team-a"]);
    find("User", None, "guest");
    // The only definition that is a local file is kept as the reference it is.
    let Entity::Api(webhook) = find("API", None, "petstore-webhook") else {
        panic!("not an API");
    };
    assert_eq!(
        webhook.spec.definition.reference(),
        Some(("$text", "./petstore-webhook.oas.yaml"))
    );
    let Entity::Api(grpc) = find("API", None, "hello-world") else {
        panic!("not an API");
    };
    assert!(matches!(&grpc.spec.definition, Definition::Text(t) if t.contains("greetingsfgfg")));
    // Names two kinds share are two objects.
    find("API", None, "petstore");
    find("Component", None, "petstore");
    let Entity::Group(org) = find("Group", None, "acme-corp") else {
        panic!("not a Group");
    };
    assert_eq!(
        org.spec
            .profile
            .as_ref()
            .and_then(|p| p.display_name.as_deref()),
        Some("ACME Corp")
    );
    assert_eq!(org.spec.about.links.len(), 2);
}

#[test]
fn in_one_namespace_the_two_guests_are_one_name_twice() {
    let outcome = import_examples(Some("acme"));
    let file = name("acme/team-a-group.yaml");
    assert_eq!(
        outcome
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [format!(
            "{file}:64: User acme/guest is already defined at {file}:51"
        )]
    );
    assert_eq!(outcome.manifests(), None);
}
