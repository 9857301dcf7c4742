//! `fetch:template`, `fetch:template:file` and `fetch:plain`: the skeleton copied
//! into the workspace, rendered or not.
//!
//! Each is planned first, in memory (every file's path and content), and then
//! written; the plan alone is what the check before the first step and `--dry-run`
//! use, so a skeleton file that does not render is reported, with its line, before
//! anything runs. As in Backstage:
//! - file and directory names are rendered too; a file whose name renders to nothing
//!   is left out (how a skeleton holds optional files);
//! - `copyWithoutTemplating` globs copy contents as they are but still render names,
//!   `copyWithoutRender` (its older form) renders neither;
//! - `templateFileExtension` (`true` means `.njk`) renders only files with that
//!   extension, which it strips;
//! - binary files are copied as they are; a file already in the workspace is kept
//!   unless `replace` is true.
//!
//! Only skeletons inside the template's own directory are fetched: pave does not
//! download `url`s, so a template reads the same skeleton offline and in CI.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use minijinja::Value;
use serde_json::{Map, Value as Json};

use super::render::{Engine, value};

/// One file a fetch will write: where in the workspace, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub executable: bool,
}

/// A fetch's problem, naming the skeleton file and line when there is one.
pub type Problem = String;

/// The skeleton directory or file named by `url`, which must stay inside the
/// template's directory.
pub fn source(template_dir: &Path, url: &str) -> Result<PathBuf, Problem> {
    if url.contains("://") {
        return Err(format!(
            "url `{url}`: pave fetches skeletons only from the template's directory \
             (a relative path such as ./skeleton), not from the network"
        ));
    }
    let relative = Path::new(url);
    if relative.is_absolute() || relative.components().any(|c| c == Component::ParentDir) {
        return Err(format!("url `{url}` leaves the template's directory"));
    }
    let path: PathBuf = template_dir
        .join(relative)
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect();
    if !path.exists() {
        return Err(format!("url `{url}`: {} does not exist", path.display()));
    }
    Ok(path)
}

/// A `targetPath` inside the workspace.
pub fn target(target_path: Option<&str>) -> Result<PathBuf, Problem> {
    let target = Path::new(target_path.unwrap_or("."));
    if target.is_absolute() || target.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "targetPath `{}` leaves the workspace",
            target.display()
        ));
    }
    Ok(target
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect())
}

/// `fetch:plain`: the files of `source`, as they are.
pub fn plan_plain(source: &Path, target: &Path) -> Result<Vec<Planned>, Problem> {
    files(source)?
        .into_iter()
        .map(|(relative, path)| {
            Ok(Planned {
                path: target.join(relative),
                contents: read(&path)?,
                executable: executable(&path),
            })
        })
        .collect()
}

/// `fetch:template`: the skeleton directory `source` rendered with `values`.
pub fn plan_template(
    engine: &Engine,
    source: &Path,
    target: &Path,
    input: &Map<String, Json>,
) -> Result<Vec<Planned>, Vec<Problem>> {
    if input.get("cookiecutterCompat") == Some(&Json::Bool(true)) {
        return Err(vec![
            "cookiecutterCompat: pave renders only the scaffolder's own ${{ }} syntax".to_owned(),
        ]);
    }
    let context = values_context(input);
    let verbatim = globs(input, "copyWithoutTemplating").map_err(|e| vec![e])?;
    let untouched = globs(input, "copyWithoutRender").map_err(|e| vec![e])?;
    let extension = match input.get("templateFileExtension") {
        Some(Json::Bool(true)) => Some(".njk".to_owned()),
        Some(Json::String(ext)) => Some(if ext.starts_with('.') {
            ext.clone()
        } else {
            format!(".{ext}")
        }),
        _ => None,
    };
    let mut planned = Vec::new();
    let mut problems = Vec::new();
    for (relative, path) in files(source).map_err(|e| vec![e])? {
        let shown = format!("{}", path.display());
        let matches = |set: &GlobSet| {
            relative
                .ancestors()
                .any(|p| !p.as_os_str().is_empty() && set.is_match(p))
        };
        let raw = relative.to_string_lossy().into_owned();
        let name = if matches(&untouched) {
            raw.clone()
        } else {
            match engine.render_str(&raw, &context) {
                Ok(name) => name,
                Err(e) => {
                    problems.push(format!("{shown}: its name: {e}"));
                    continue;
                }
            }
        };
        if name.is_empty() || name.ends_with('/') || Path::new(&name).file_name().is_none() {
            continue;
        }
        // A value in a name must not lead the file out of the workspace: no `..` at all.
        if Path::new(&name).is_absolute()
            || Path::new(&name)
                .components()
                .any(|c| c == Component::ParentDir)
        {
            problems.push(format!(
                "{shown}: its name renders to {name}, outside the workspace"
            ));
            continue;
        }
        let contents = match read(&path) {
            Ok(contents) => contents,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let (name, render) = match &extension {
            Some(ext) => match name.strip_suffix(ext.as_str()) {
                Some(stripped) => (stripped.to_owned(), true),
                None => (name, false),
            },
            None => (name, !matches(&verbatim) && !matches(&untouched)),
        };
        let contents = match (render, std::str::from_utf8(&contents)) {
            (true, Ok(text)) if !text.contains('\0') => match engine.render_str(text, &context) {
                Ok(rendered) => rendered.into_bytes(),
                Err(e) => {
                    let line = e.line.map_or_else(String::new, |l| format!("{l}:"));
                    problems.push(format!("{shown}:{line} {e}"));
                    continue;
                }
            },
            _ => contents,
        };
        planned.push(Planned {
            path: target.join(name),
            contents,
            executable: executable(&path),
        });
    }
    if problems.is_empty() {
        Ok(planned)
    } else {
        Err(problems)
    }
}

/// `fetch:template:file`: one file rendered with `values` to `targetPath`.
pub fn plan_template_file(
    engine: &Engine,
    source: &Path,
    target: &Path,
    input: &Map<String, Json>,
) -> Result<Vec<Planned>, Vec<Problem>> {
    if !source.is_file() {
        return Err(vec![format!("{} is not a file", source.display())]);
    }
    let text = std::fs::read_to_string(source)
        .map_err(|e| vec![format!("{}: cannot read: {e}", source.display())])?;
    let rendered = engine
        .render_str(&text, &values_context(input))
        .map_err(|e| {
            let line = e.line.map_or_else(String::new, |l| format!("{l}:"));
            vec![format!("{}:{line} {e}", source.display())]
        })?;
    Ok(vec![Planned {
        path: target.to_owned(),
        contents: rendered.into_bytes(),
        executable: executable(source),
    }])
}

/// Writes the plan into the workspace; what is there already stays unless `replace`.
/// Returns the paths written.
pub fn write(
    workspace: &Path,
    planned: &[Planned],
    replace: bool,
) -> Result<Vec<PathBuf>, Problem> {
    let mut written = Vec::new();
    for file in planned {
        let path = workspace.join(&file.path);
        if path.exists() && !replace {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, &file.contents)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        #[cfg(unix)]
        if file.executable {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
        }
        written.push(file.path.clone());
    }
    Ok(written)
}

fn values_context(input: &Map<String, Json>) -> Value {
    let values = input
        .get("values")
        .cloned()
        .unwrap_or(Json::Object(Map::new()));
    value(BTreeMap::from([("values", values)]))
}

fn globs(input: &Map<String, Json>, key: &str) -> Result<GlobSet, Problem> {
    let mut set = GlobSetBuilder::new();
    for pattern in input
        .get(key)
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let Some(pattern) = pattern.as_str() else {
            return Err(format!("{key}: {pattern} is not a glob"));
        };
        let pattern = pattern.trim_start_matches("./");
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("{key}: {e}"))?;
        set.add(glob);
        // `dir/**` also means the directory's files, as minimatch reads it.
        if let Some(dir) = pattern.strip_suffix("/**") {
            set.add(Glob::new(dir).map_err(|e| format!("{key}: {e}"))?);
        }
    }
    set.build().map_err(|e| format!("{key}: {e}"))
}

/// Every file under `root`, by path relative to it, in a stable order; a `.git`
/// directory is not part of a skeleton.
pub fn files(root: &Path) -> Result<Vec<(PathBuf, PathBuf)>, Problem> {
    if root.is_file() {
        let name = root.file_name().map(PathBuf::from).unwrap_or_default();
        return Ok(vec![(name, root.to_owned())]);
    }
    let mut found = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(root).expect("under root").to_owned();
                found.push((relative, path));
            }
        }
    }
    found.sort();
    Ok(found)
}

fn read(path: &Path) -> Result<Vec<u8>, Problem> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn skeleton() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &[u8]| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write("README.md", b"# ${{ values.name }}\n");
        write(
            "src/${{ values.name }}.js",
            b"// ${{ values.name | upper }}\n",
        );
        write("{% if values.docs %}docs.md{% endif %}", b"docs\n");
        write(".github/workflows/ci.yml", b"run: echo ${{ github.sha }}\n");
        write("logo.png", b"\x89PNG\0${{ values.name }}");
        write("raw/${{ values.name }}.txt", b"${{ values.name }}\n");
        dir
    }

    fn plan(input: Json) -> Result<BTreeMap<String, String>, Vec<Problem>> {
        let dir = skeleton();
        let input = input.as_object().unwrap().clone();
        let planned = plan_template(&Engine::new(), dir.path(), Path::new("app"), &input)?;
        Ok(planned
            .into_iter()
            .map(|p| {
                (
                    p.path.display().to_string(),
                    String::from_utf8_lossy(&p.contents).into_owned(),
                )
            })
            .collect())
    }

    #[test]
    fn names_and_contents_render_except_where_the_globs_say() {
        let files = plan(json!({
            "values": {"name": "pay", "docs": false},
            "copyWithoutTemplating": [".github/workflows/*"],
            "copyWithoutRender": ["raw/**"],
        }))
        .unwrap();
        let expected: BTreeMap<String, String> = [
            (
                "app/.github/workflows/ci.yml",
                "run: echo ${{ github.sha }}\n",
            ),
            ("app/README.md", "# pay\n"),
            ("app/logo.png", "\u{fffd}PNG\0${{ values.name }}"),
            ("app/raw/${{ values.name }}.txt", "${{ values.name }}\n"),
            ("app/src/pay.js", "// PAY\n"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect();
        assert_eq!(files, expected);
    }

    #[test]
    fn a_skeleton_file_that_does_not_render_is_named_with_its_line() {
        let problems =
            plan(json!({"values": {"nme": "pay"}, "copyWithoutTemplating": [".github/**"]}))
                .unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("README.md:1:") && p.contains("values holds nme")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("its name")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_name_that_renders_outside_the_workspace_is_refused() {
        let problems = plan(json!({"values": {"name": "../../escaped", "docs": false},
                                   "copyWithoutRender": ["raw/**", ".github/**"]}))
        .unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.contains("renders to src/../../escaped.js, outside the workspace")),
            "{problems:?}"
        );
    }

    #[test]
    fn sources_and_targets_stay_inside() {
        let dir = skeleton();
        assert!(source(dir.path(), "../x").unwrap_err().contains("leaves"));
        assert!(
            source(dir.path(), "https://github.com/x")
                .unwrap_err()
                .contains("not from the network")
        );
        assert!(
            target(Some("../x"))
                .unwrap_err()
                .contains("leaves the workspace")
        );
        assert_eq!(target(Some("./a/b")).unwrap(), PathBuf::from("a/b"));
    }
}
