//! Following `kind: Location` through files on disk: the order files are read in,
//! each file read once, and an error at the target's own `FILE:LINE` for a cycle, a
//! missing target, one outside the start directory, and an absolute path or URL.
//! Every error leaves nothing to print.

use std::fs;
use std::path::PathBuf;

use super::*;

/// A catalog in a directory of its own.
struct Catalog {
    dir: tempfile::TempDir,
}

impl Catalog {
    fn new() -> Self {
        Catalog {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// `file` as messages name it.
    fn name(&self, file: &str) -> String {
        self.path(file).display().to_string()
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.path(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, text).unwrap();
        path
    }

    fn import(&self, roots: &[&str]) -> Outcome {
        let paths: Vec<PathBuf> = roots.iter().map(|root| self.path(root)).collect();
        import_files(&paths, None)
    }
}

/// A Location listing `targets` (the first on line 7), then `extra` in its spec.
fn location(targets: &[&str], extra: &str) -> String {
    let targets: String = targets.iter().map(|t| format!("    - {t}\n")).collect();
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: here\nspec:\n  \
         targets:\n{targets}{extra}"
    )
}

fn group(name: &str) -> String {
    format!(
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: {name}\nspec:\n  \
         type: team\n"
    )
}

fn names(outcome: &Outcome) -> Vec<String> {
    outcome
        .entities
        .iter()
        .map(|e| e.metadata().name.clone().unwrap_or_default())
        .collect()
}

/// The diagnostics of an import that must fail and print nothing.
fn refused(outcome: &Outcome) -> Vec<String> {
    assert!(outcome.errors() > 0, "no error: {:#?}", outcome.diagnostics);
    assert_eq!(outcome.manifests(), None);
    messages(outcome)
}

#[test]
fn files_are_read_depth_first_in_target_order() {
    let catalog = Catalog::new();
    let root = format!(
        "{}---\n{}",
        group("r"),
        location(&["./a.yaml", "./b.yaml"], "")
    );
    catalog.write("root.yaml", &root);
    let a = format!("{}---\n{}", location(&["./deeper/c.yaml"], ""), group("a"));
    catalog.write("a.yaml", &a);
    catalog.write("deeper/c.yaml", &group("c"));
    catalog.write("b.yaml", &group("b"));
    let outcome = catalog.import(&["root.yaml"]);
    assert_eq!(messages(&outcome), Vec::<String>::new());
    assert_eq!(names(&outcome), ["r", "c", "a", "b"]);
    assert!(outcome.manifests().is_some());
    // A file reached through a Location is named by the path it was reached by.
    catalog.write("deeper/c.yaml", "kind: [\n");
    let outcome = catalog.import(&["root.yaml"]);
    assert_has(
        &refused(&outcome),
        &format!("{}:2: not valid YAML", catalog.name("deeper/c.yaml")),
    );
}

#[test]
fn a_file_two_locations_name_is_read_once() {
    let catalog = Catalog::new();
    catalog.write(
        "root.yaml",
        &location(&["./left.yaml", "./right/right.yaml"], ""),
    );
    let left = format!("{}---\n{}", location(&["./common.yaml"], ""), group("left"));
    catalog.write("left.yaml", &left);
    let right = format!(
        "{}---\n{}",
        location(&["../common.yaml"], ""),
        group("right")
    );
    catalog.write("right/right.yaml", &right);
    catalog.write("common.yaml", &group("common"));
    let outcome = catalog.import(&["root.yaml"]);
    assert_eq!(messages(&outcome), Vec::<String>::new());
    assert_eq!(names(&outcome), ["common", "left", "right"]);
    // So is a file named on the command line and by a Location.
    let outcome = catalog.import(&["root.yaml", "common.yaml", "root.yaml"]);
    assert_eq!(messages(&outcome), Vec::<String>::new());
    assert_eq!(names(&outcome), ["common", "left", "right"]);
}

#[test]
fn a_cycle_is_an_error_at_the_target_that_closes_it() {
    let catalog = Catalog::new();
    let a = format!("{}---\n{}", group("a"), location(&["./b.yaml"], ""));
    catalog.write("a.yaml", &a);
    let b = format!("{}---\n{}", location(&["./a.yaml"], ""), group("b"));
    catalog.write("b.yaml", &b);
    let outcome = catalog.import(&["a.yaml"]);
    let (a, b) = (catalog.name("a.yaml"), catalog.name("b.yaml"));
    assert_eq!(
        refused(&outcome),
        [format!(
            "{b}:7: target ./a.yaml closes a cycle of Locations: {a} → {b} → {a}"
        )]
    );
    // A Location naming its own file is the shortest cycle.
    catalog.write("self.yaml", &location(&["./self.yaml"], ""));
    let own = catalog.name("self.yaml");
    assert_eq!(
        refused(&catalog.import(&["self.yaml"])),
        [format!(
            "{own}:7: target ./self.yaml closes a cycle of Locations: {own} → {own}"
        )]
    );
}

#[test]
fn a_missing_target_is_an_error_unless_the_location_says_optional() {
    let catalog = Catalog::new();
    catalog.write("root.yaml", &location(&["./b.yaml", "./missing.yaml"], ""));
    catalog.write("b.yaml", &group("b"));
    let root = catalog.name("root.yaml");
    let missing = catalog.name("missing.yaml");
    assert_eq!(
        refused(&catalog.import(&["root.yaml"])),
        [format!(
            "{root}:8: target ./missing.yaml does not exist (there is no {missing})"
        )]
    );

    catalog.write(
        "root.yaml",
        &location(&["./b.yaml", "./missing.yaml"], "  presence: optional\n"),
    );
    let outcome = catalog.import(&["root.yaml"]);
    assert_eq!(outcome.errors(), 0);
    assert_eq!(
        messages(&outcome),
        [format!(
            "{root}:8: target ./missing.yaml does not exist (there is no {missing}); \
             skipped, as presence: optional allows"
        )]
    );
    assert_eq!(names(&outcome), ["b"]);
}

#[test]
fn a_target_outside_the_start_directory_is_an_error() {
    let catalog = Catalog::new();
    catalog.write("x.yaml", &group("outside"));
    catalog.write("start/c.yaml", &group("c"));
    catalog.write(
        "start/a.yaml",
        &location(&["../x.yaml", "./sub/../../x.yaml", "./sub/b.yaml"], ""),
    );
    // The start directory is the one of the command line's file, however deep the
    // chain: `../c.yaml` from sub/ is still inside it, `../../x.yaml` is not.
    catalog.write(
        "start/sub/b.yaml",
        &location(&["../c.yaml", "../../x.yaml"], ""),
    );
    let outcome = catalog.import(&["start/a.yaml"]);
    let messages = refused(&outcome);
    assert_eq!(messages.len(), 3, "{messages:#?}");
    let start = fs::canonicalize(catalog.path("start")).unwrap();
    let outside = fs::canonicalize(catalog.path("x.yaml")).unwrap();
    let expected = |file: &str, line: usize, target: &str| {
        format!(
            "{}:{line}: target {target} is {}, outside the start directory {}; pave \
             imports only files below the start directory; URL targets are not fetched",
            catalog.name(file),
            outside.display(),
            start.display()
        )
    };
    assert_eq!(
        messages,
        [
            expected("start/a.yaml", 7, "../x.yaml"),
            expected("start/a.yaml", 8, "./sub/../../x.yaml"),
            expected("start/sub/b.yaml", 8, "../../x.yaml"),
        ]
    );
    assert_eq!(names(&outcome), ["c"]);

    // A target outside that does not exist is outside all the same.
    catalog.write("start/a.yaml", &location(&["../nothing.yaml"], ""));
    let messages = refused(&catalog.import(&["start/a.yaml"]));
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0].contains("nothing.yaml, outside the start directory"),
        "{}",
        messages[0]
    );
}

#[cfg(unix)]
#[test]
fn a_symlink_does_not_leave_the_start_directory() {
    let catalog = Catalog::new();
    catalog.write("x.yaml", &group("outside"));
    catalog.write("start/a.yaml", &location(&["./link.yaml"], ""));
    std::os::unix::fs::symlink(catalog.path("x.yaml"), catalog.path("start/link.yaml")).unwrap();
    let messages = refused(&catalog.import(&["start/a.yaml"]));
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert!(
        messages[0].starts_with(&format!(
            "{}:7: target ./link.yaml is ",
            catalog.name("start/a.yaml")
        )),
        "{}",
        messages[0]
    );
    assert!(
        messages[0].contains("outside the start directory"),
        "{}",
        messages[0]
    );
}

#[test]
fn absolute_paths_and_urls_are_not_followed() {
    let catalog = Catalog::new();
    let inside = catalog.write("b.yaml", &group("b"));
    let text = format!(
        "{}---\n{}---\n{}",
        location(
            &[
                &inside.display().to_string(),
                "https://example.com/catalog-info.yaml"
            ],
            ""
        ),
        // Lines 10 to 17.
        location(&["./b.yaml"], "  type: url\n"),
        // Lines 19 to 26.
        location(&["./b.yaml"], "  type: github-discovery\n"),
    );
    catalog.write("root.yaml", &text);
    let root = catalog.name("root.yaml");
    let not_fetched = "pave imports only files below the start directory; URL targets are \
                       not fetched";
    assert_eq!(
        refused(&catalog.import(&["root.yaml"])),
        [
            format!(
                "{root}:7: target {} is an absolute path; {not_fetched}",
                inside.display()
            ),
            format!(
                "{root}:8: target https://example.com/catalog-info.yaml is a URL; {not_fetched}"
            ),
            format!("{root}:16: target ./b.yaml: the Location has type url; {not_fetched}"),
            format!(
                "{root}:26: spec.type \"github-discovery\": pave follows only targets of type \
                 file"
            ),
        ]
    );
}

#[test]
fn a_glob_in_the_last_segment_reads_the_files_it_matches_in_name_order() {
    let catalog = Catalog::new();
    catalog.write("entities/b.yaml", &group("b"));
    catalog.write("entities/a.yaml", &group("a"));
    catalog.write("entities/notes.txt", "not YAML: [\n");
    fs::create_dir_all(catalog.path("entities/c.yaml")).unwrap();
    catalog.write("root.yaml", &location(&["./entities/*.yaml"], ""));
    let outcome = catalog.import(&["root.yaml"]);
    assert_eq!(messages(&outcome), Vec::<String>::new());
    assert_eq!(names(&outcome), ["a", "b"]);

    // A glob in the Location's own directory does not match its own file.
    catalog.write("entities/all.yaml", &location(&["./*.yaml"], ""));
    let outcome = catalog.import(&["entities/all.yaml"]);
    assert_eq!(messages(&outcome), Vec::<String>::new());
    assert_eq!(names(&outcome), ["a", "b"]);

    catalog.write(
        "root.yaml",
        &location(&["./*/a.yaml", "./entities/*.json", "./none/*.yaml"], ""),
    );
    let root = catalog.name("root.yaml");
    assert_eq!(
        refused(&catalog.import(&["root.yaml"])),
        [
            format!(
                "{root}:7: target ./*/a.yaml: pave follows a glob only in the last path \
                 segment (./entities/*.yaml), not in a directory"
            ),
            format!(
                "{root}:8: target ./entities/*.json matches no file in {}",
                catalog.name("entities")
            ),
            format!(
                "{root}:9: target ./none/*.yaml: the directory {} does not exist",
                catalog.name("none")
            ),
        ]
    );
}

#[test]
fn a_location_not_read_from_disk_is_left_out_with_a_warning() {
    let outcome = import(&[source("<stdin>", &location(&["./b.yaml"], ""))], None);
    assert_eq!(outcome.errors(), 0);
    assert_eq!(
        messages(&outcome),
        [
            "<stdin>:1: warning: Location here: its targets are not followed, since <stdin> \
             is not a file on disk to resolve them from; import the file by its path"
        ]
    );
    assert_eq!(outcome.manifests().as_deref(), Some(""));
}

#[test]
fn a_location_spec_is_checked_like_any_other() {
    let catalog = Catalog::new();
    let text = format!(
        "{}---\n{}",
        location(&["''", "./a.yaml"], "  presence: sometimes\n  rules: []\n"),
        // Lines 12 to 17.
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: empty\nspec:\n  \
         targets: 3\n",
    );
    catalog.write("a.yaml", &group("a"));
    catalog.write("root.yaml", &text);
    let root = catalog.name("root.yaml");
    let outcome = catalog.import(&["root.yaml"]);
    assert_eq!(
        refused(&outcome),
        [
            format!("{root}:7: spec.targets[0] is empty"),
            format!("{root}:9: spec.presence \"sometimes\": expected required or optional"),
            format!("{root}:10: warning: spec.rules: pave has no field for it, so it is left out"),
            format!("{root}:17: spec.targets: expected a list of strings, found a number"),
        ]
    );
    // The valid target of a Location with a problem is still followed, for its own
    // problems to be found too.
    assert_eq!(names(&outcome), ["a"]);
}
