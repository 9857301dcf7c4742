//! The repository stands on its own: a fresh clone has everything its files refer to,
//! and its licence is the one Cargo.toml declares.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{fs, io};

use pave_tests::repo_root;

/// Every file the repository tracks (or, outside a git checkout, every file but
/// `.git/` and `target/`), relative to its root.
fn tracked_files() -> Vec<PathBuf> {
    let root = repo_root();
    let listed = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["ls-files", "-z"])
        .output();
    match listed {
        Ok(out) if out.status.success() => String::from_utf8(out.stdout)
            .expect("tracked paths are UTF-8")
            .split('\0')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect(),
        _ => {
            let mut files = Vec::new();
            walk(&root, &root, &mut files).expect("the repository can be read");
            files
        }
    }
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default();
        if path.is_dir() {
            if name != ".git" && name != "target" {
                walk(root, &path, files)?;
            }
        } else {
            files.push(path.strip_prefix(root).unwrap().to_owned());
        }
    }
    Ok(())
}

#[test]
fn no_tracked_file_refers_to_a_directory_beside_the_clone() {
    // Spelled in two pieces so this file does not match itself.
    let outside = format!("{}/shared", "..");
    let files = tracked_files();
    assert!(
        files.iter().any(|f| f == Path::new("README.md")),
        "the file list is wrong: {files:?}"
    );
    let offending: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let bytes = fs::read(repo_root().join(file)).ok()?;
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<String> = text
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains(&outside))
                .map(|(i, _)| format!("{}:{}", file.display(), i + 1))
                .collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        })
        .collect();
    assert!(
        offending.is_empty(),
        "a clone has no {outside}; put what these lines need into the repository \
         (docs/, examples/) and point there:\n{}",
        offending.join("\n")
    );
}

#[test]
fn relative_links_in_the_markdown_files_lead_to_files_of_the_clone() {
    let mut broken = Vec::new();
    for file in tracked_files()
        .into_iter()
        .filter(|f| f.extension().is_some_and(|x| x == "md"))
    {
        let text = fs::read_to_string(repo_root().join(&file)).unwrap();
        for target in text
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split(')').next())
        {
            let path = target.split('#').next().unwrap_or_default();
            if path.is_empty() || path.contains("://") || path.starts_with("mailto:") {
                continue;
            }
            let resolved = repo_root()
                .join(file.parent().unwrap_or(Path::new("")))
                .join(path);
            let inside = resolved
                .canonicalize()
                .is_ok_and(|p| p.starts_with(repo_root().canonicalize().unwrap()));
            if !inside {
                broken.push(format!("{}: ({target})", file.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to nothing in the clone:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_license_file_is_the_license_cargo_toml_declares() {
    let manifest = fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("\nlicense = \"Apache-2.0\"\n"),
        "Cargo.toml's workspace license changed: update LICENSE and this test"
    );
    let license = fs::read_to_string(repo_root().join("LICENSE")).expect("LICENSE exists");
    for words in [
        "Apache License",
        "Version 2.0, January 2004",
        "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION",
        "END OF TERMS AND CONDITIONS",
    ] {
        assert!(
            license.contains(words),
            "LICENSE is not the Apache License 2.0 text: no {words:?}"
        );
    }
    // Every package takes the workspace's license, so the one LICENSE covers them all.
    for file in tracked_files().into_iter().filter(|f| {
        f.file_name().is_some_and(|n| n == "Cargo.toml") && f != Path::new("Cargo.toml")
    }) {
        let package = fs::read_to_string(repo_root().join(&file)).unwrap();
        assert!(
            package.contains("\nlicense.workspace = true\n"),
            "{} does not take the workspace's license",
            file.display()
        );
    }
}
