//! The operator's image as `make image` builds it (`make test` passes its path in
//! `PAVE_IMAGE_ARCHIVE`): a valid OCI archive whose root file system is the binary,
//! the libraries it links, the CA bundle and a passwd for user 65532, nothing else,
//! and in which the binary runs as that user.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use pave_tests::repo_root;
use serde_json::Value;

fn archive() -> PathBuf {
    std::env::var_os("PAVE_IMAGE_ARCHIVE")
        .map(PathBuf::from)
        .expect("PAVE_IMAGE_ARCHIVE is not set: run through `make test`, or set it to what crates/pave-testenv/scripts/build-image.sh prints")
}

fn untar(archive: &Path, into: &Path) {
    fs::create_dir_all(into).unwrap();
    let status = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .status()
        .unwrap();
    assert!(status.success(), "tar -xf {}", archive.display());
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

struct Image {
    dir: PathBuf,
    config: Value,
    rootfs: PathBuf,
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Follows index.json → manifest → config and layer, checking each digest and size.
fn open() -> Image {
    let dir = std::env::temp_dir().join(format!("pave-image-test-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    untar(&archive(), &dir.join("oci"));
    let oci = dir.join("oci");
    let layout: Value = serde_json::from_slice(&fs::read(oci.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(layout["imageLayoutVersion"], "1.0.0");
    let blob = |descriptor: &Value| -> PathBuf {
        let digest = descriptor["digest"].as_str().unwrap();
        let path = oci
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap());
        assert_eq!(
            format!("sha256:{}", sha256(&path)),
            digest,
            "{}",
            path.display()
        );
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            descriptor["size"].as_u64().unwrap(),
            "size of {digest}"
        );
        path
    };
    let index: Value = serde_json::from_slice(&fs::read(oci.join("index.json")).unwrap()).unwrap();
    let entry = &index["manifests"][0];
    assert!(
        entry["annotations"]["io.containerd.image.name"]
            .as_str()
            .unwrap()
            .starts_with("localhost/pave-operator:"),
        "{index}"
    );
    let manifest: Value = serde_json::from_slice(&fs::read(blob(entry)).unwrap()).unwrap();
    let config: Value =
        serde_json::from_slice(&fs::read(blob(&manifest["config"])).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{manifest}");
    let layer = blob(&layers[0]);
    assert_eq!(
        config["rootfs"]["diff_ids"][0].as_str().unwrap(),
        format!("sha256:{}", sha256(&layer)),
        "the uncompressed layer's digest is its diff_id"
    );
    let rootfs = dir.join("rootfs");
    untar(&layer, &rootfs);
    Image {
        dir,
        config,
        rootfs,
    }
}

fn files_under(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
    for entry in fs::read_dir(dir).unwrap().map(Result::unwrap) {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            files_under(root, &path, out);
        } else {
            out.insert(format!("/{}", path.strip_prefix(root).unwrap().display()));
        }
    }
}

#[test]
fn the_image_runs_as_a_non_root_user_with_no_shell() {
    let image = open();
    let config = &image.config["config"];
    assert_eq!(config["User"], "65532:65532", "{config}");
    assert_eq!(
        config["Entrypoint"],
        serde_json::json!(["/pave-operator"]),
        "{config}"
    );

    let mut files = BTreeSet::new();
    files_under(&image.rootfs, &image.rootfs, &mut files);
    for shell in ["/bin/sh", "/bin/bash", "/bin/busybox", "/usr/bin/sh"] {
        assert!(!files.contains(shell), "{shell} is in the image");
    }
    let expected_extra = [
        "/pave-operator",
        "/etc/passwd",
        "/etc/group",
        "/etc/ssl/certs/ca-certificates.crt",
    ];
    for file in &files {
        let library = file.contains(".so");
        assert!(
            library || expected_extra.contains(&file.as_str()),
            "{file} is in the image, and is neither the binary, a library it links, nor the passwd, group or CA bundle"
        );
    }
    assert!(files.contains("/pave-operator"), "{files:?}");
    let passwd = fs::read_to_string(image.rootfs.join("etc/passwd")).unwrap();
    assert_eq!(passwd.trim(), "pave:x:65532:65532:pave:/:/nonexistent");

    // The binary is self-contained in that root: it runs there as user 65532.
    let out = Command::new("chroot")
        .arg("--userspec=65532:65532")
        .arg(&image.rootfs)
        .args(["/pave-operator", "--version"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pave-operator --version in the image's root: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(version.starts_with("pave-operator "), "{version}");
}

/// A text check: the Dockerfile (which CI cannot build, having no Docker) ends in the
/// same user, port and entrypoint as the image `make image` builds.
#[test]
fn the_dockerfile_builds_the_same_final_stage() {
    let dockerfile = fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    let final_stage = dockerfile.rsplit_once("FROM ").unwrap().1;
    assert!(final_stage.starts_with("scratch"), "{final_stage}");
    for line in [
        "USER 65532:65532",
        "EXPOSE 8080",
        r#"ENTRYPOINT ["/pave-operator"]"#,
    ] {
        assert!(
            final_stage.lines().any(|l| l.trim() == line),
            "no `{line}` in the final stage:\n{final_stage}"
        );
    }
    assert!(dockerfile.contains("/etc/ssl/certs/ca-certificates.crt"));
}
