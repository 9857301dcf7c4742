//! The committed CRD YAML in `crds/` is exactly what the Rust types generate.
//! When this fails, run `make crds` and commit the result.

use std::{collections::BTreeSet, fs, path::Path};

#[test]
fn committed_crds_match_the_rust_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds");
    let generated = pave_api::crd_files();
    for (file, yaml) in &generated {
        let committed = fs::read_to_string(dir.join(file)).unwrap_or_else(|e| {
            panic!("crds/{file} is missing ({e}): run `make crds` and commit it")
        });
        assert!(
            committed == *yaml,
            "crds/{file} is stale: run `make crds` and commit the result"
        );
    }
    let expected: BTreeSet<_> = generated.iter().map(|(file, _)| file.clone()).collect();
    let present: BTreeSet<_> = fs::read_dir(&dir)
        .expect("crds/ exists")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    assert_eq!(
        present, expected,
        "crds/ holds files no Rust type generates: remove them"
    );
}
