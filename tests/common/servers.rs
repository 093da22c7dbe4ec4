//! The real servers of `scripts/servers.sh start` (Garage behind a logging nginx, nginx with
//! files, Redis): where they are, what they logged, and uploads to the bucket.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use tower_iiif::source::object_store::{self, ObjectStoreExt};

/// `target/servers/env`, written by `scripts/servers.sh start`.
pub fn env(name: &str) -> String {
    static VARS: OnceLock<HashMap<String, String>> = OnceLock::new();
    let vars = VARS.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/servers/env");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|_| {
            panic!(
                "{} is missing: these tests need the real servers; run `scripts/servers.sh start` \
                 (scripts/test.sh does)",
                path.display()
            )
        });
        let vars: HashMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        for key in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
            // SAFETY: set once, before any S3 client reads the environment.
            unsafe { std::env::set_var(key, &vars[key]) };
        }
        vars
    });
    vars.get(name)
        .unwrap_or_else(|| panic!("{name} is not in target/servers/env"))
        .clone()
}

pub fn files_dir() -> PathBuf {
    PathBuf::from(env("TOWER_IIIF_FILES_ROOT")).join("files")
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(files_dir().join(name)).unwrap()
}

/// Put `bytes` at `key` in the bucket, straight to Garage (not through the logging proxy).
pub async fn upload(key: &str, bytes: Vec<u8>) {
    env("AWS_REGION");
    let store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(env("TOWER_IIIF_S3_BUCKET"))
        .with_endpoint(env("TOWER_IIIF_S3_DIRECT"))
        .with_virtual_hosted_style_request(false)
        .with_allow_http(true)
        .build()
        .unwrap();
    store
        .put(&object_store::path::Path::from(key), bytes.into())
        .await
        .unwrap();
}

/// One access-log line: method, status, body bytes, Range, Authorization.
#[derive(Debug, Clone)]
pub struct Logged {
    pub method: String,
    pub status: u16,
    pub bytes: u64,
    pub range: String,
    pub auth: String,
}

pub fn log_len(var: &str) -> usize {
    std::fs::read_to_string(env(var)).map_or(0, |s| s.len())
}

/// The lines logged since `from` (a [`log_len`]) whose path contains `needle`. nginx writes a
/// line when it has sent the response, which may be a moment after the client has it.
pub async fn logged(var: &str, from: usize, needle: &str) -> Vec<Logged> {
    tokio::time::sleep(Duration::from_millis(150)).await;
    let text = std::fs::read_to_string(env(var)).unwrap_or_default();
    text[from.min(text.len())..]
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| {
            let quoted: Vec<&str> = l.split('"').collect();
            let head: Vec<&str> = quoted[0].split_whitespace().collect();
            Logged {
                method: head[0].to_owned(),
                status: head[2].parse().unwrap(),
                bytes: head[3].parse().unwrap(),
                range: quoted.get(1).copied().unwrap_or("-").to_owned(),
                auth: quoted.get(3).copied().unwrap_or("-").to_owned(),
            }
        })
        .collect()
}
