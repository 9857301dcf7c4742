//! `kubectl pave import`: turns Backstage `catalog-info.yaml` files into pave
//! Component manifests, so an existing catalog moves to pave with one command.
//!
//! Every document of every file is read and checked before anything is printed: a
//! manifest stream that stops halfway through would be applied halfway by
//! `kubectl apply -f -`. Problems are reported as `FILE:LINE: message` on stderr, the
//! way compilers do, so editors can jump to them. Entities of other kinds are skipped
//! with a note, and Backstage fields pave has no place for are dropped with a warning;
//! neither fails the import.
//!
//! The output is built from `pave_api`'s own types and checked against the CRD those
//! types generate (see `checks`), so whatever is printed is what the API server
//! accepts.

mod checks;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, Read, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::LazyLock;

use pave_api::component::Link;
use pave_api::{Component, ComponentSpec};
use regex::Regex;
use serde_yaml::{Mapping, Value};

use crate::lines::{Document, FieldPath, split_documents};
use checks::{SpecSchema, backstage_path};

/// The Backstage API versions whose entities pave reads.
const BACKSTAGE_API_VERSIONS: [&str; 2] = ["backstage.io/v1alpha1", "backstage.io/v1beta1"];

/// How the file `-` (standard input) is named in messages.
const STDIN_NAME: &str = "<stdin>";

/// One input file: its name as messages show it, and its text or why it could not be
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub text: Result<String, String>,
}

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The input is wrong; nothing is printed and the command fails.
    Error,
    /// Something was dropped; the import goes on.
    Warning,
    /// An entity that is not a Component was left out; the import goes on.
    Skipped,
}

/// A message about one place in the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; `None` when the message is about the file as a whole.
    pub line: Option<usize>,
    pub severity: Severity,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.file)?;
        if let Some(line) = self.line {
            write!(f, "{line}:")?;
        }
        let prefix = match self.severity {
            Severity::Warning => "warning: ",
            Severity::Error | Severity::Skipped => "",
        };
        write!(f, " {prefix}{}", self.message)
    }
}

/// What an import produced: the Components, in input order, and every diagnostic.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub components: Vec<Component>,
    pub diagnostics: Vec<Diagnostic>,
}

impl Outcome {
    /// How many errors there are; any at all means nothing may be printed.
    pub fn errors(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }
}

/// `kubectl pave import`: reads `files` (`-` is standard input), prints the Components
/// on stdout only when the whole input is valid, and every diagnostic on stderr.
pub fn run(files: &[impl AsRef<Path>], namespace: Option<&str>) -> ExitCode {
    let sources: Vec<Source> = files.iter().map(|file| read(file.as_ref())).collect();
    let outcome = import(&sources, namespace);
    let mut stderr = io::stderr().lock();
    for diagnostic in &outcome.diagnostics {
        // Nothing better to do when stderr itself is gone.
        let _ = writeln!(stderr, "{diagnostic}");
    }
    let errors = outcome.errors();
    if errors > 0 {
        let _ = writeln!(
            stderr,
            "kubectl-pave: {errors} error{} in the input; no manifests were printed",
            if errors == 1 { "" } else { "s" }
        );
        return ExitCode::FAILURE;
    }
    match io::stdout()
        .lock()
        .write_all(to_yaml(&outcome.components).as_bytes())
    {
        Ok(()) => ExitCode::SUCCESS,
        // `kubectl pave import x | head` is not an error worth a message.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(stderr, "kubectl-pave: writing to stdout failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn read(path: &Path) -> Source {
    if path == Path::new("-") {
        let mut text = String::new();
        let text = io::stdin()
            .read_to_string(&mut text)
            .map(|_| text)
            .map_err(|e| format!("cannot read standard input: {e}"));
        return Source {
            name: STDIN_NAME.to_owned(),
            text,
        };
    }
    Source {
        name: path.display().to_string(),
        text: std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}")),
    }
}

/// Checks `--namespace` when the command line is parsed, so a bad one fails at once.
pub fn parse_namespace(namespace: &str) -> Result<String, String> {
    match checks::namespace_problem(namespace) {
        None => Ok(namespace.to_owned()),
        Some(problem) => Err(problem),
    }
}

/// The manifests, as one YAML stream of documents separated by `---`.
pub fn to_yaml(components: &[Component]) -> String {
    components
        .iter()
        .map(|c| serde_yaml::to_string(c).expect("a Component always serialises to YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Imports every Backstage Component in `sources`. `namespace`, when given, replaces
/// every Component's namespace.
pub fn import(sources: &[Source], namespace: Option<&str>) -> Outcome {
    let schema = SpecSchema::component();
    let mut components = Vec::new();
    let mut diagnostics = Vec::new();
    // Two Components with one name would silently overwrite each other on apply.
    let mut defined: HashMap<(Option<String>, String), (String, usize)> = HashMap::new();
    for source in sources {
        let diagnostic = |line: Option<usize>, severity, message: String| Diagnostic {
            file: source.name.clone(),
            line,
            severity,
            message,
        };
        let text = match &source.text {
            Ok(text) => text,
            Err(problem) => {
                diagnostics.push(diagnostic(None, Severity::Error, problem.clone()));
                continue;
            }
        };
        let documents = split_documents(text);
        if documents.is_empty() {
            diagnostics.push(diagnostic(
                None,
                Severity::Warning,
                "no YAML documents in this file".to_owned(),
            ));
        }
        for document in &documents {
            let (component, mut findings) = import_document(document, namespace, &schema);
            if let Some(component) = component {
                let key = (
                    component.metadata.namespace.clone(),
                    component.metadata.name.clone().unwrap_or_default(),
                );
                let line = document.start_line();
                if let Some((file, first)) = defined.get(&key) {
                    findings.push(Finding {
                        line,
                        severity: Severity::Error,
                        message: format!(
                            "Component {} is already defined at {file}:{first}",
                            qualified_name(&key)
                        ),
                    });
                } else {
                    defined.insert(key, (source.name.clone(), line));
                    components.push(component);
                }
            }
            findings.sort_by_key(|f| f.line);
            diagnostics.extend(
                findings
                    .into_iter()
                    .map(|f| diagnostic(Some(f.line), f.severity, f.message)),
            );
        }
    }
    Outcome {
        components,
        diagnostics,
    }
}

fn qualified_name((namespace, name): &(Option<String>, String)) -> String {
    match namespace {
        Some(namespace) => format!("{namespace}/{name}"),
        None => name.clone(),
    }
}

/// A diagnostic within the document being imported.
#[derive(Debug)]
struct Finding {
    line: usize,
    severity: Severity,
    message: String,
}

/// Collects the findings of one document, placing each at its field's line.
struct Findings<'a> {
    document: &'a Document<'a>,
    list: Vec<Finding>,
    /// Fields already reported as wrong, so the schema check does not repeat them.
    wrong: Vec<FieldPath>,
}

impl<'a> Findings<'a> {
    fn new(document: &'a Document<'a>) -> Self {
        Self {
            document,
            list: Vec::new(),
            wrong: Vec::new(),
        }
    }

    fn push(&mut self, path: &FieldPath, severity: Severity, message: String) {
        self.list.push(Finding {
            line: self.document.line_of(path),
            severity,
            message,
        });
    }

    fn error(&mut self, path: &FieldPath, message: String) {
        self.wrong.push(path.clone());
        self.push(path, Severity::Error, message);
    }

    fn warning(&mut self, path: &FieldPath, message: String) {
        self.push(path, Severity::Warning, message);
    }

    fn already_wrong(&self, path: &FieldPath) -> bool {
        self.wrong.iter().any(|wrong| path.0.starts_with(&wrong.0))
    }

    /// An optional string; absent and null are `None`.
    fn string(&mut self, value: Option<&Value>, path: &FieldPath) -> Option<String> {
        match value? {
            Value::Null => None,
            Value::String(text) => Some(text.clone()),
            other => {
                self.error(path, format!("{path}: {}", expected_string(other)));
                None
            }
        }
    }

    /// A string Backstage requires: missing, null and empty are reported as missing.
    fn required_string(&mut self, value: Option<&Value>, path: &FieldPath) -> Option<String> {
        let text = self.string(value, path);
        if text.as_deref().is_none_or(str::is_empty) && !self.already_wrong(path) {
            self.error(path, format!("{path} is missing; a Component needs one"));
            return None;
        }
        text
    }

    /// A list of strings; absent and null are an empty list.
    fn strings(&mut self, value: Option<&Value>, path: &FieldPath) -> Vec<String> {
        match value {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Sequence(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(index, item)| {
                    let path = path.index(index);
                    if item.is_null() {
                        self.error(&path, format!("{path} is empty"));
                    }
                    self.string(Some(item), &path)
                })
                .collect(),
            Some(other) => {
                self.error(
                    path,
                    format!(
                        "{path}: expected a list of strings, found {}",
                        describe(other)
                    ),
                );
                Vec::new()
            }
        }
    }

    /// A mapping; absent and null are `None`.
    fn mapping<'v>(&mut self, value: Option<&'v Value>, path: &FieldPath) -> Option<&'v Mapping> {
        match value? {
            Value::Null => None,
            Value::Mapping(mapping) => Some(mapping),
            other => {
                self.error(
                    path,
                    format!("{path}: expected a mapping, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// Labels or annotations: string keys to string values, as Kubernetes stores them.
    fn string_map(
        &mut self,
        value: Option<&Value>,
        path: &FieldPath,
    ) -> Option<BTreeMap<String, String>> {
        let mapping = self.mapping(value, path)?;
        let mut map = BTreeMap::new();
        for (key, value) in self.keyed(mapping, path) {
            let path = path.key(&key);
            match value {
                Value::String(text) => {
                    map.insert(key, text.clone());
                }
                other => self.error(&path, format!("{path}: {}", expected_string(other))),
            }
        }
        (!map.is_empty()).then_some(map)
    }

    /// The entries of `mapping` whose keys are strings; any other key is an error.
    fn keyed<'v>(&mut self, mapping: &'v Mapping, path: &FieldPath) -> Vec<(String, &'v Value)> {
        let mut entries = Vec::new();
        for (key, value) in mapping {
            match key.as_str() {
                Some(key) => entries.push((key.to_owned(), value)),
                None => self.error(
                    path,
                    format!("{path}: keys must be strings, found {}", describe(key)),
                ),
            }
        }
        entries
    }

    /// Warns about every key of `mapping` that is not in `known`.
    fn warn_unknown(&mut self, mapping: &Mapping, path: &FieldPath, known: &[&str]) {
        for (key, _) in self.keyed(mapping, path) {
            if known.contains(&key.as_str()) {
                continue;
            }
            let field = path.key(&key);
            let hint = if field.to_string() == "spec.dependencyOf" {
                "; pave derives dependencyOf from the other side, so add this component \
                 to the dependsOn of each component listed here"
            } else {
                ""
            };
            self.warning(
                &field,
                format!("{field}: pave has no field for it, so it is left out{hint}"),
            );
        }
    }
}

/// `expected a string` with what was found, and the fix for the usual cause: YAML
/// reads unquoted `12345`, `true` or `1.0` as numbers and booleans.
fn expected_string(found: &Value) -> String {
    match found {
        Value::Bool(_) | Value::Number(_) => {
            let text = serde_yaml::to_string(found).unwrap_or_default();
            format!(
                "expected a string, found {}; write it in quotes: \"{}\"",
                describe(found),
                text.trim()
            )
        }
        other => format!("expected a string, found {}", describe(other)),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Imports one document: the Component it holds if it is a valid one, and what was
/// found along the way.
fn import_document(
    document: &Document<'_>,
    namespace: Option<&str>,
    schema: &SpecSchema,
) -> (Option<Component>, Vec<Finding>) {
    let mut findings = Findings::new(document);
    let component = match serde_yaml::from_str::<Value>(document.text) {
        Ok(value) => entity(&value, namespace, schema, &mut findings),
        Err(error) => {
            let line = error.location().map_or(document.start_line(), |l| {
                document.first_line + l.line() - 1
            });
            findings.list.push(Finding {
                line,
                severity: Severity::Error,
                message: format!(
                    "not valid YAML: {}",
                    in_file_lines(&error.to_string(), document.first_line)
                ),
            });
            None
        }
    };
    let has_errors = findings.list.iter().any(|f| f.severity == Severity::Error);
    (component.filter(|_| !has_errors), findings.list)
}

/// The parser's message with its `line N` positions, which count from the start of
/// the document, turned into lines of the file.
fn in_file_lines(message: &str, first_line: usize) -> String {
    static LINE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bline (\d+)").unwrap());
    LINE.replace_all(message, |captures: &regex::Captures<'_>| {
        let line: usize = captures[1].parse().unwrap_or(1);
        format!("line {}", first_line + line - 1)
    })
    .into_owned()
}

/// Reads one parsed document as a Backstage entity; only Components come out.
fn entity(
    value: &Value,
    namespace: Option<&str>,
    schema: &SpecSchema,
    findings: &mut Findings<'_>,
) -> Option<Component> {
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
        return None;
    };

    let api_version_path = FieldPath::of(&["apiVersion"]);
    let expected = format!("expected {}", BACKSTAGE_API_VERSIONS.join(" or "));
    match findings.string(entity.get("apiVersion"), &api_version_path) {
        None if findings.already_wrong(&api_version_path) => return None,
        None => {
            findings.error(&root, format!("apiVersion is missing; {expected}"));
            return None;
        }
        Some(version) if !BACKSTAGE_API_VERSIONS.contains(&version.as_str()) => {
            let hint = if version.starts_with(&format!("{}/", pave_api::GROUP)) {
                " (this is already a pave object: apply it as it is)"
            } else {
                ""
            };
            findings.error(
                &api_version_path,
                format!("apiVersion {version:?}: {expected}{hint}"),
            );
            return None;
        }
        Some(_) => {}
    }

    let kind_path = FieldPath::of(&["kind"]);
    let kind = findings.string(entity.get("kind"), &kind_path);
    let Some(kind) = kind else {
        if !findings.already_wrong(&kind_path) {
            findings.error(&root, "kind is missing".to_owned());
        }
        return None;
    };
    if kind != "Component" {
        if kind.eq_ignore_ascii_case("Component") {
            findings.error(
                &kind_path,
                format!("kind {kind:?}: Backstage kinds are case-sensitive; write Component"),
            );
        } else {
            let name = entity
                .get("metadata")
                .and_then(|m| m.get("name"))
                .and_then(Value::as_str)
                .unwrap_or("(without a name)");
            findings.list.push(Finding {
                line: findings.document.start_line(),
                severity: Severity::Skipped,
                message: format!("skipped {kind} {name}: pave imports only Components"),
            });
        }
        return None;
    }

    component(entity, namespace, schema, findings)
}

/// Reads a Backstage Component into a pave Component, reporting every problem.
fn component(
    entity: &Mapping,
    namespace: Option<&str>,
    schema: &SpecSchema,
    findings: &mut Findings<'_>,
) -> Option<Component> {
    let root = FieldPath::default();
    findings.warn_unknown(entity, &root, &["apiVersion", "kind", "metadata", "spec"]);

    // metadata
    let meta = FieldPath::of(&["metadata"]);
    let metadata = findings.mapping(entity.get("metadata"), &meta);
    if metadata.is_none() && !findings.already_wrong(&meta) {
        findings.error(
            &root,
            "metadata is missing; a Component needs metadata.name".to_owned(),
        );
    }
    let empty = Mapping::new();
    let metadata = metadata.unwrap_or(&empty);
    let field = |name: &str| metadata.get(name);
    let name_path = meta.key("name");
    let name = findings.required_string(field("name"), &name_path);
    if let Some(name) = &name
        && let Some(problem) = checks::name_problem(name)
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
    let title = findings.string(field("title"), &meta.key("title"));
    let description = findings.string(field("description"), &meta.key("description"));
    let labels = findings.string_map(field("labels"), &meta.key("labels"));
    let annotations = findings.string_map(field("annotations"), &meta.key("annotations"));
    let tags = findings.strings(field("tags"), &meta.key("tags"));
    let links = links(field("links"), &meta.key("links"), findings);
    findings.warn_unknown(
        metadata,
        &meta,
        &[
            "name",
            "namespace",
            "title",
            "description",
            "labels",
            "annotations",
            "tags",
            "links",
        ],
    );

    // spec
    let spec_path = FieldPath::of(&["spec"]);
    let Some(backstage_spec) = findings.mapping(entity.get("spec"), &spec_path) else {
        if !findings.already_wrong(&spec_path) {
            findings.error(
                &root,
                "spec is missing; a Component needs spec.type, spec.lifecycle and spec.owner"
                    .to_owned(),
            );
        }
        return None;
    };
    let field = |name: &str| backstage_spec.get(name);
    let at = |name: &str| spec_path.key(name);
    let type_ = findings.required_string(field("type"), &at("type"));
    let lifecycle = findings.required_string(field("lifecycle"), &at("lifecycle"));
    let owner = findings.required_string(field("owner"), &at("owner"));
    let spec = ComponentSpec {
        type_: type_.unwrap_or_default(),
        lifecycle: lifecycle.unwrap_or_default(),
        owner: owner.unwrap_or_default(),
        system: findings.string(field("system"), &at("system")),
        subcomponent_of: findings.string(field("subcomponentOf"), &at("subcomponentOf")),
        title,
        description,
        tags,
        links,
        depends_on: findings.strings(field("dependsOn"), &at("dependsOn")),
        dependency_of: findings.strings(field("dependencyOf"), &at("dependencyOf")),
        provides_apis: findings.strings(field("providesApis"), &at("providesApis")),
        consumes_apis: findings.strings(field("consumesApis"), &at("consumesApis")),
        properties: None,
    };
    findings.warn_unknown(
        backstage_spec,
        &spec_path,
        &[
            "type",
            "lifecycle",
            "owner",
            "system",
            "subcomponentOf",
            "dependsOn",
            "dependencyOf",
            "providesApis",
            "consumesApis",
        ],
    );

    let json = serde_json::to_value(&spec).expect("a ComponentSpec always serialises to JSON");
    let violations = schema.violations(&json, |path| findings.already_wrong(&backstage_path(path)));
    for violation in violations {
        let path = backstage_path(&violation.path);
        findings.error(&path, format!("{path}: {}", violation.message));
    }

    let mut component = Component::new(&name?, spec);
    component.metadata.namespace = namespace.map(str::to_owned).or(own_namespace);
    component.metadata.labels = labels;
    component.metadata.annotations = annotations;
    Some(component)
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

#[cfg(test)]
mod tests;
