//! The hostile-file suite (issue 16, item 5; see docs/RELIABILITY.md).
//!
//! Files made by code for every input format the server reads: JPEG, PNG, TIFF in strips, tiled
//! TIFF pyramids, JPEG 2000 (a JP2 file and a raw codestream, one of them tiled), GIF, WebP and
//! BMP. For each, a valid base image (which must answer 200 everywhere: a control that the
//! generators make real images) and hostile variants of it: truncations at many offsets, single-
//! and multi-byte corruptions at spread offsets (a seeded xorshift), dimension bombs, deflate and
//! LZW bombs, IFD loops, offsets past the end, corrupted codestreams, broken JP2 boxes; hostile
//! embedded ICC profiles in every container that carries one; and random bytes and empty files
//! behind every image extension.
//!
//! Each file is asked for its info.json, a thumbnail (`full/!64,64`) and a tile
//! (`0,0,64,64/32,`), each within [`TIME_BOUND`]. Each answer must be a correct image (it decodes,
//! at the size the request asks for given the info.json's width and height) or a clean error
//! (a status of [`ALLOWED`], one short line of text, no debug output, no panic); and after each
//! file the service must still render a valid control image. Every problem of a run is listed at
//! once, and the statuses are tallied per format (on stderr, `--nocapture` to see them).
//!
//! A last test checks that the memory ceiling refuses full-size renders of dimension bombs at
//! once.

mod bmp;
mod ceiling;
mod gif;
mod icc;
mod jp2;
mod jpeg;
mod png;
mod random;
mod tiff;
mod tiff_tiled;
mod webp;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::IiifService;
use crate::Error;
use crate::codec::EncodeOptions;
use crate::pixels::{Budget, Pixels};
use crate::request::{Format, Identifier};
use crate::source::{Source, SourceMetadata, SourceObject, SourceRequest};

use self::bmp::bmp_cases;
use self::ceiling::ceiling_bombs;
use self::gif::gif_cases;
use self::icc::icc_cases;
use self::jp2::jp2_cases;
use self::jpeg::jpeg_cases;
use self::png::png_cases;
use self::random::random_cases;
use self::tiff::strip_tiff_cases;
use self::tiff_tiled::tiled_tiff_cases;
use self::webp::webp_cases;

/// The longest any one request may take, its body included.
const TIME_BOUND: Duration = Duration::from_secs(20);
/// Files checked at once.
const CONCURRENCY: usize = 8;
/// The identifier of the valid control image every suite serves beside its files.
const CONTROL_ID: &str = "ok.png";
/// A render of the control image: 200 after every hostile file, or the server is not alive.
const CONTROL_PATH: &str = "/ok.png/full/16,/0/default.png";
/// The error statuses a hostile file may answer with: 400 (a request that can never be served,
/// e.g. past the memory ceiling, or a size the header makes invalid), 500 (a broken file of a
/// format we read), 501 (a file of no format we read), 503 (shed). Never 404: every file exists.
const ALLOWED: [u16; 4] = [400, 500, 501, 503];
/// What an error body must never contain: debug output, and the messages of panics.
const FORBIDDEN: [&str; 7] = ["{", "}", "::", "Some(", "Err(", "panicked", "task failed"];
/// The longest error line accepted, in bytes.
const MAX_ERROR_BYTES: usize = 300;
/// The size of most valid base images.
const BASE: (u32, u32) = (300, 200);
/// The JP2 signature box.
const JP2_SIGNATURE: [u8; 12] = [
    0, 0, 0, 0x0C, 0x6A, 0x50, 0x20, 0x20, 0x0D, 0x0A, 0x87, 0x0A,
];
/// The PNG signature.
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n'];

// ---------------------------------------------------------------------------------------------
// The tests.

/// JPEG: truncations, corruptions, SOF dimension bombs, broken segments and tables, EXIF loops,
/// scans of zeros, fill bytes and restart markers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_jpeg_files_answer_cleanly() {
    run_suite("JPEG", jpeg_cases()).await;
}

/// PNG: truncations, corruptions (with and without fixed CRCs), IHDR dimension bombs and invalid
/// fields, deflate bombs (IDAT, iCCP, zTXt, iTXt), EXIF loops, APNG frame bombs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_png_files_answer_cleanly() {
    run_suite("PNG", png_cases()).await;
}

/// TIFF in strips (the whole-file decoder): truncations, corruptions, dimension bombs, offsets
/// and counts past the end, IFD loops and self-referencing SubIFDs, unknown compressions and
/// photometrics, deflate, LZW and PackBits bombs, broken BigTIFF and big-endian headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_strip_tiff_files_answer_cleanly() {
    run_suite("TIFF strips", strip_tiff_cases()).await;
}

/// Tiled TIFF pyramids (the range reader), Deflate and JPEG tiles: truncations, corruptions,
/// level and tile dimension bombs, tile offsets and counts past the end, IFD loops to the same
/// and earlier IFDs, SubIFDs pointing at their own IFD, broken JPEGTables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_tiled_tiff_files_answer_cleanly() {
    run_suite("TIFF pyramids", tiled_tiff_cases()).await;
}

/// JPEG 2000, a tiled JP2 file and an untiled raw codestream: truncations, corruptions, SIZ with
/// zero and huge sizes, COD with absurd decomposition levels, tile-part lengths past the end,
/// corrupted packets, and broken JP2 boxes (length 0 in the middle, below 8, past the end, XL,
/// jp2c or ihdr missing, bogus palettes and colour specifications); and a gray JP2 with hostile
/// palettes (the crate reads a one-component file's palette itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_jpeg_2000_files_answer_cleanly() {
    run_suite("JPEG 2000", jp2_cases()).await;
}

/// GIF: truncations, corruptions, screen and frame dimension bombs, frames off the screen,
/// invalid LZW code sizes, LZW garbage and an LZW bomb, endless sub-block chains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_gif_files_answer_cleanly() {
    run_suite("GIF", gif_cases()).await;
}

/// WebP: truncations, corruptions, VP8L and VP8X canvas dimension bombs, RIFF and chunk sizes
/// past the end, animation frame bombs, lossy VP8 and ALPH garbage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_webp_files_answer_cleanly() {
    run_suite("WebP", webp_cases()).await;
}

/// BMP: truncations, corruptions, width and height bombs (negative ones too), invalid bit
/// depths and compressions, data offsets past the end, RLE bombs and overruns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bmp_files_answer_cleanly() {
    run_suite("BMP", bmp_cases()).await;
}

/// Embedded ICC profiles, hostile ones (sizes, tag counts and tag offsets past the end, curves
/// and LUTs of absurd sizes, garbage) in every container that carries one: JPEG APP2 (whole and
/// chunked), PNG iCCP, TIFF ICCProfile in strips and in pyramids, JP2 colr, WebP ICCP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_icc_profiles_answer_cleanly() {
    run_suite("ICC profiles", icc_cases()).await;
}

/// Random bytes, text, single bytes and empty files behind every image extension, and every
/// format's magic bytes followed by random bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bytes_with_image_extensions_answer_cleanly() {
    run_suite("random bytes", random_cases()).await;
}

/// Under a 64 MiB memory ceiling, `full/max` of a 16000 x 16000 dimension bomb of every format
/// (well under the 2^28-pixel output cap, so only the ceiling stands in the way) answers at
/// once with a clean error, a thumbnail of it with an image or a clean error, and the ceiling
/// is never exceeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_ceiling_refuses_dimension_bombs_quickly() {
    const CEILING: u64 = 64 << 20;
    const QUICK: Duration = Duration::from_secs(10);
    let bombs = ceiling_bombs();
    let ids: Vec<String> = bombs.iter().map(|(id, _)| id.clone()).collect();
    let files: HashMap<String, Bytes> = bombs
        .into_iter()
        .map(|(id, bytes)| (id, Bytes::from(bytes)))
        .collect();
    let svc = IiifService::new(MemSource(Arc::new(files))).memory_ceiling(CEILING);
    let mut failures = Vec::new();
    for id in &ids {
        let full = format!("/{id}/full/max/0/default.png");
        let thumbnail = format!("/{id}/full/!64,64/0/default.png");
        for (path, is_full) in [(full, true), (thumbnail, false)] {
            let started = Instant::now();
            let reply = match ask(&svc, &path).await {
                Ok(reply) => reply,
                Err(no) => {
                    failures.push(no.message);
                    continue;
                }
            };
            let took = started.elapsed();
            eprintln!(
                "memory ceiling: {path}: {} in {:.2} s",
                reply.status.as_u16(),
                took.as_secs_f64()
            );
            if took > QUICK {
                failures.push(format!("{path}: took {:.1} s", took.as_secs_f64()));
            }
            match (is_full, reply.status == StatusCode::OK) {
                (true, true) => failures.push(format!(
                    "{path}: 200 for a 16000 x 16000 render past a 64 MiB ceiling"
                )),
                (false, true) => check_image(
                    &path,
                    &reply,
                    Some(best_fit(16_000, 16_000, 64, 64)),
                    &mut failures,
                ),
                (_, false) => check_error(&path, &reply, &mut failures),
            }
        }
    }
    let peak = svc.memory_peak();
    if peak > CEILING {
        failures.push(format!(
            "the memory peak {peak} exceeds the ceiling {CEILING}"
        ));
    }
    assert!(
        failures.is_empty(),
        "memory ceiling: {} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// The service under test: one in-memory source holding every file of a suite.

/// Files held in memory by identifier (the identifier is the whole key: no extension is tried).
#[derive(Clone)]
struct MemSource(Arc<HashMap<String, Bytes>>);

/// One file of a [`MemSource`].
struct MemObject {
    data: Bytes,
    meta: SourceMetadata,
}

impl Source for MemSource {
    type Object = MemObject;

    async fn open(&self, id: &Identifier, _request: &SourceRequest) -> Result<MemObject, Error> {
        let data = self
            .0
            .get(id.as_str())
            .cloned()
            .ok_or_else(|| Error::not_found("no such image"))?;
        let meta = SourceMetadata::new(data.len() as u64, Some(std::time::UNIX_EPOCH), None);
        Ok(MemObject { data, meta })
    }
}

impl SourceObject for MemObject {
    fn metadata(&self) -> &SourceMetadata {
        &self.meta
    }

    async fn read_range(&self, range: Range<u64>) -> Result<Bytes, Error> {
        let len = self.data.len() as u64;
        let end = range.end.min(len);
        let start = range.start.min(end);
        Ok(self.data.slice(start as usize..end as usize))
    }

    /// Reads on the calling thread, like a local file.
    fn read_at_blocking(&self, offset: u64, buf: &mut [u8]) -> Option<Result<usize, Error>> {
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.data.len());
        let n = buf.len().min(self.data.len() - start);
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        Some(Ok(n))
    }
}

// ---------------------------------------------------------------------------------------------
// The runner and its checks.

/// One file of a suite.
struct Case {
    /// The format it is tallied under.
    format: &'static str,
    /// Its identifier, URL-safe, saying what it is (`png-trunc-57`).
    id: String,
    bytes: Vec<u8>,
    /// For a valid base image, the width and height its info.json must say: every request must
    /// then answer 200.
    valid: Option<(u32, u32)>,
}

impl Case {
    /// A hostile file: any answer of the suite's rules will do.
    fn hostile(format: &'static str, id: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self {
            format,
            id: id.into(),
            bytes,
            valid: None,
        }
    }

    /// A valid image of `size`: it must answer 200 everywhere.
    fn valid(
        format: &'static str,
        id: impl Into<String>,
        bytes: Vec<u8>,
        size: (u32, u32),
    ) -> Self {
        Self {
            format,
            id: id.into(),
            bytes,
            valid: Some(size),
        }
    }
}

/// Hostile cases from `(name, bytes)` pairs, the names prefixed with `prefix-`.
fn named(format: &'static str, prefix: &str, list: Vec<(&str, Vec<u8>)>) -> Vec<Case> {
    list.into_iter()
        .map(|(name, bytes)| Case::hostile(format, format!("{prefix}-{name}"), bytes))
        .collect()
}

/// What one file's requests answered (a status, `timeout` or `panic` each), and what was wrong.
struct Outcome {
    format: &'static str,
    answers: [String; 3],
    failures: Vec<String>,
}

/// What one request answered.
struct Reply {
    status: StatusCode,
    body: Bytes,
}

/// Why a request has no [`Reply`]: it panicked or ran past [`TIME_BOUND`].
struct NoReply {
    /// `timeout` or `panic`, for the tallies.
    label: &'static str,
    message: String,
}

/// Serve `cases` (and the control image) from one service and check every file, the valid
/// ones first; print the tallies; fail listing every problem.
async fn run_suite(family: &str, cases: Vec<Case>) {
    let started = Instant::now();
    let mut files = HashMap::new();
    let mut plan = Vec::new();
    for Case {
        format,
        id,
        bytes,
        valid,
    } in cases
    {
        assert!(
            !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'),
            "identifier {id:?} is not URL-safe"
        );
        assert!(
            files.insert(id.clone(), Bytes::from(bytes)).is_none(),
            "duplicate identifier {id}"
        );
        plan.push((format, id, valid));
    }
    assert!(
        files
            .insert(CONTROL_ID.to_owned(), Bytes::from(control_png()))
            .is_none(),
        "{CONTROL_ID} is the control image's identifier"
    );
    let svc = IiifService::new(MemSource(Arc::new(files)));
    // The valid files first, on a quiet service: they must all answer 200.
    let (valid, hostile): (Vec<_>, Vec<_>) = plan.into_iter().partition(|p| p.2.is_some());
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for batch in [valid, hostile] {
        check_all(&svc, batch, &mut outcomes, &mut failures).await;
    }
    for o in &outcomes {
        failures.extend(o.failures.iter().cloned());
    }
    report(family, &outcomes, started.elapsed());
    failures.sort();
    assert!(
        failures.is_empty(),
        "hostile-file suite, {family}: {} failures in {} files:\n{}",
        failures.len(),
        outcomes.len(),
        failures.join("\n")
    );
}

/// A file to check: its format's name, its identifier, and the size of a valid one.
type Planned = (&'static str, String, Option<(u32, u32)>);

/// Check `plan`'s files, [`CONCURRENCY`] at a time.
async fn check_all(
    svc: &IiifService<MemSource>,
    plan: Vec<Planned>,
    outcomes: &mut Vec<Outcome>,
    failures: &mut Vec<String>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(CONCURRENCY));
    let mut set = tokio::task::JoinSet::new();
    for (format, id, valid) in plan {
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let svc = svc.clone();
        set.spawn(async move {
            let _permit = permit;
            check_case(svc, format, id, valid).await
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => failures.push(format!("a check task failed: {e}")),
        }
    }
}

/// Ask for one file's info.json, thumbnail and tile, check each answer, then check that the
/// server still renders the control image.
async fn check_case(
    svc: IiifService<MemSource>,
    format: &'static str,
    id: String,
    valid: Option<(u32, u32)>,
) -> Outcome {
    let mut failures = Vec::new();
    let mut answers: [String; 3] = Default::default();
    let info_path = format!("/{id}/info.json");
    let size = match ask(&svc, &info_path).await {
        Ok(reply) => {
            answers[0] = reply.status.as_u16().to_string();
            check_info(&info_path, &reply, &mut failures)
        }
        Err(no) => {
            answers[0] = no.label.to_owned();
            failures.push(no.message);
            None
        }
    };
    let images = [
        (
            format!("/{id}/full/!64,64/0/default.png"),
            size.map(|(w, h)| best_fit(w, h, 64, 64)),
        ),
        (
            format!("/{id}/0,0,64,64/32,/0/default.png"),
            size.map(|(w, h)| tile_size(w, h)),
        ),
    ];
    for (k, (path, want)) in images.iter().enumerate() {
        match ask(&svc, path).await {
            Ok(reply) => {
                answers[k + 1] = reply.status.as_u16().to_string();
                check_image(path, &reply, *want, &mut failures);
            }
            Err(no) => {
                answers[k + 1] = no.label.to_owned();
                failures.push(no.message);
            }
        }
    }
    if let Some(want) = valid {
        for (answer, what) in answers
            .iter()
            .zip(["info.json", "the thumbnail", "the tile"])
        {
            if answer != "200" {
                failures.push(format!("{id}: a valid image answered {answer} to {what}"));
            }
        }
        if size.is_some_and(|got| got != want) {
            failures.push(format!(
                "{id}: info.json says {size:?}, the image is {want:?}"
            ));
        }
    }
    if let Some(problem) = check_alive(&svc).await {
        failures.push(format!("after {id}: {problem}"));
    }
    Outcome {
        format,
        answers,
        failures,
    }
}

/// Send a GET for `path` on a task of its own (so that a panic is caught) and collect the body,
/// within [`TIME_BOUND`].
async fn ask(svc: &IiifService<MemSource>, path: &str) -> Result<Reply, NoReply> {
    let req = Request::get(path)
        .header("host", "hostile.test")
        .body(())
        .map_err(|e| NoReply {
            label: "bad-request",
            message: format!("{path}: cannot build the request: {e}"),
        })?;
    let svc = svc.clone();
    let mut task = tokio::spawn(async move {
        let res = match svc.oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        };
        let (parts, body) = res.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(never) => match never {},
        };
        Reply {
            status: parts.status,
            body,
        }
    });
    match tokio::time::timeout(TIME_BOUND, &mut task).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) => Err(NoReply {
            label: "panic",
            message: format!("{path}: the request's task failed (a panic?): {e}"),
        }),
        Err(_) => {
            task.abort();
            Err(NoReply {
                label: "timeout",
                message: format!("{path}: no answer within {} s", TIME_BOUND.as_secs()),
            })
        }
    }
}

/// The width and height of a 200 info.json (both positive), or `None` after checking an error.
fn check_info(path: &str, reply: &Reply, failures: &mut Vec<String>) -> Option<(u32, u32)> {
    if reply.status != StatusCode::OK {
        check_error(path, reply, failures);
        return None;
    }
    let doc: serde_json::Value = match serde_json::from_slice(&reply.body) {
        Ok(doc) => doc,
        Err(e) => {
            failures.push(format!("{path}: 200 with a body that is not JSON: {e}"));
            return None;
        }
    };
    let side = |key: &str| {
        doc.get(key)
            .and_then(serde_json::Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| v > 0)
    };
    match (side("width"), side("height")) {
        (Some(w), Some(h)) => Some((w, h)),
        _ => {
            failures.push(format!(
                "{path}: 200 without a positive width and height (width {}, height {})",
                doc["width"], doc["height"]
            ));
            None
        }
    }
}

/// Check an image answer. `want` is `None` when info.json failed, `Some(None)` when the size
/// asked for is invalid for the image (a 400), else the size the image must have.
fn check_image(
    path: &str,
    reply: &Reply,
    want: Option<Option<(u32, u32)>>,
    failures: &mut Vec<String>,
) {
    if reply.status != StatusCode::OK {
        check_error(path, reply, failures);
        return;
    }
    let px = match crate::codec::decode(&reply.body, Budget::default()) {
        Ok(px) => px,
        Err(e) => {
            failures.push(format!("{path}: 200 with a body that does not decode: {e}"));
            return;
        }
    };
    let got = (px.width(), px.height());
    match want {
        None => failures.push(format!(
            "{path}: 200 ({}x{}) although info.json failed",
            got.0, got.1
        )),
        Some(None) => failures.push(format!(
            "{path}: 200 ({}x{}) for a size the image's info.json makes invalid (a 400)",
            got.0, got.1
        )),
        Some(Some(size)) if size != got => failures.push(format!(
            "{path}: {}x{} where {}x{} was asked for",
            got.0, got.1, size.0, size.1
        )),
        Some(Some(_)) => {}
    }
}

/// Check an error answer: an allowed status, and a clean one-line body.
fn check_error(path: &str, reply: &Reply, failures: &mut Vec<String>) {
    let status = reply.status.as_u16();
    if !ALLOWED.contains(&status) {
        failures.push(format!(
            "{path}: status {status} is not one of {ALLOWED:?}: {}",
            excerpt(&reply.body)
        ));
    }
    if let Some(problem) = error_body_problem(&reply.body) {
        failures.push(format!(
            "{path}: {status} with a bad error body ({problem}): {}",
            excerpt(&reply.body)
        ));
    }
}

/// What is wrong with an error body, if anything: it must be one non-empty line of UTF-8 (a
/// final newline allowed) of at most [`MAX_ERROR_BYTES`], with none of [`FORBIDDEN`].
fn error_body_problem(body: &[u8]) -> Option<String> {
    let Ok(text) = std::str::from_utf8(body) else {
        return Some("not UTF-8".to_owned());
    };
    let line = text.strip_suffix('\n').unwrap_or(text);
    if line.trim().is_empty() {
        return Some("empty".to_owned());
    }
    if line.contains(['\n', '\r']) {
        return Some("more than one line".to_owned());
    }
    if line.len() > MAX_ERROR_BYTES {
        return Some(format!("{} bytes long", line.len()));
    }
    FORBIDDEN
        .iter()
        .find(|f| line.contains(**f))
        .map(|f| format!("contains {f:?}"))
}

/// The start of a body, quoted, for a failure message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim_end();
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{:?}...", &text[..at]),
        None => format!("{text:?}"),
    }
}

/// Whether the service still renders the control image (waiting out 503s for up to 20 s: a
/// bomb's render may hold the render permits for a while), or what is wrong.
async fn check_alive(svc: &IiifService<MemSource>) -> Option<String> {
    for _ in 0..100 {
        let reply = match ask(svc, CONTROL_PATH).await {
            Ok(reply) => reply,
            Err(no) => return Some(format!("the control image: {}", no.message)),
        };
        match reply.status.as_u16() {
            200 => {
                return match crate::codec::decode(&reply.body, Budget::default()) {
                    Ok(px) if (px.width(), px.height()) == (16, 12) => None,
                    Ok(px) => Some(format!(
                        "the control image is {}x{}, not 16x12",
                        px.width(),
                        px.height()
                    )),
                    Err(e) => Some(format!("the control image does not decode: {e}")),
                };
            }
            503 => tokio::time::sleep(Duration::from_millis(200)).await,
            status => {
                return Some(format!(
                    "the control image answered {status}: {}",
                    excerpt(&reply.body)
                ));
            }
        }
    }
    Some("the control image was shed (503) for 20 s".to_owned())
}

/// Print the suite's size and its statuses per format and request.
fn report(family: &str, outcomes: &[Outcome], elapsed: Duration) {
    type Tallies = (usize, [BTreeMap<String, usize>; 3]);
    let mut by_format: BTreeMap<&str, Tallies> = BTreeMap::new();
    for o in outcomes {
        let entry = by_format.entry(o.format).or_default();
        entry.0 += 1;
        for (tally, answer) in entry.1.iter_mut().zip(&o.answers) {
            *tally.entry(answer.clone()).or_default() += 1;
        }
    }
    let show = |t: &BTreeMap<String, usize>| {
        t.iter()
            .map(|(answer, n)| format!("{answer}: {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    eprintln!(
        "hostile-file suite, {family}: {} files, {} requests, {:.1} s",
        outcomes.len(),
        outcomes.len() * 4,
        elapsed.as_secs_f64()
    );
    for (format, (n, tallies)) in &by_format {
        eprintln!(
            "  {format}: {n} files; info.json [{}]; thumbnail [{}]; tile [{}]",
            show(&tallies[0]),
            show(&tallies[1]),
            show(&tallies[2])
        );
    }
}

/// `round(a / b)`, halves away from zero, as the planner rounds.
fn round_div(a: u64, b: u64) -> u32 {
    u32::try_from((2 * a + b) / (2 * b)).unwrap_or(u32::MAX)
}

/// The size `full/!bw,bh` gives a `w` x `h` image under API 3.0's rules (no upscaling without
/// `^`), or `None` when the request is a 400.
fn best_fit(w: u32, h: u32, bw: u32, bh: u32) -> Option<(u32, u32)> {
    let (rw, rh, bw64, bh64) = (u64::from(w), u64::from(h), u64::from(bw), u64::from(bh));
    let (ow, oh) = if bw64 * rh <= bh64 * rw {
        (bw, round_div(bw64 * rh, rw).min(bh))
    } else {
        (round_div(bh64 * rw, rh).min(bw), bh)
    };
    (ow > 0 && oh > 0 && ow <= w && oh <= h).then_some((ow, oh))
}

/// The size `0,0,64,64/32,` gives a `w` x `h` image (the region clipped to the image), or
/// `None` when the request is a 400 (a region narrower than 32: upscaling).
fn tile_size(w: u32, h: u32) -> Option<(u32, u32)> {
    let (rw, rh) = (u64::from(w.min(64)), u64::from(h.min(64)));
    let oh = round_div(32 * rh, rw);
    (32 <= rw && oh > 0 && u64::from(oh) <= rh).then_some((32, oh))
}

// ---------------------------------------------------------------------------------------------
// Bytes.

/// A seeded xorshift64 generator: the suite is the same on every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `n` (0 when `n` is 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        (self.next_u64() >> 32) as u8
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

fn be16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([b[at], b[at + 1]]))
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

fn le16(b: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([b[at], b[at + 1]]))
}

fn le32(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize
}

fn put_be16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn put_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

fn put_le16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_le32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A copy of `b` changed by `edit`.
fn patched(b: &[u8], edit: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = b.to_vec();
    edit(&mut out);
    out
}

/// A copy of `b` with `remove` bytes at `at` replaced by `insert`.
fn splice(b: &[u8], at: usize, remove: usize, insert: &[u8]) -> Vec<u8> {
    let mut out = b[..at].to_vec();
    out.extend_from_slice(insert);
    out.extend_from_slice(&b[at + remove..]);
    out
}

/// The CRC-32 of PNG chunks (bit by bit: the chunks are small).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// `data` compressed as one zlib stream.
fn zlib(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).expect("in memory");
    z.finish().expect("in memory")
}

/// A zlib stream of `n` zero bytes (about a thousandth of `n`), compressed a MiB at a time.
fn zlib_zeros(n: usize) -> Vec<u8> {
    let chunk = vec![0u8; 1 << 20];
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let mut left = n;
    while left > 0 {
        let k = left.min(chunk.len());
        z.write_all(&chunk[..k]).expect("in memory");
        left -= k;
    }
    z.finish().expect("in memory")
}

/// `data` as a TIFF LZW stream (MSB first, early code-size switch).
fn lzw_tiff(data: &[u8]) -> Vec<u8> {
    weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
        .encode(data)
        .expect("LZW")
}

/// `data` as a GIF LZW stream (LSB first, 8-bit codes).
fn lzw_gif(data: &[u8]) -> Vec<u8> {
    weezl::encode::Encoder::new(weezl::BitOrder::Lsb, 8)
        .encode(data)
        .expect("LZW")
}

/// `count` TIFF LZW clear codes (256 in 9 bits, MSB first) and nothing else.
fn lzw_clear_codes(count: usize) -> Vec<u8> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    for _ in 0..count {
        acc = (acc << 9) | 256;
        bits += 9;
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits > 0 {
        out.push((acc << (8 - bits)) as u8);
    }
    out
}

/// `w` x `h` bytes of a gray ramp.
fn gradient(w: usize, h: usize) -> Vec<u8> {
    (0..w * h).map(|i| (i % 251) as u8).collect()
}

/// The pattern the valid base images show.
fn base_pixels() -> Pixels {
    crate::samples::pattern(BASE.0, BASE.1)
}

/// `px` encoded by the crate's own encoder.
fn encode(px: &Pixels, format: Format) -> Vec<u8> {
    crate::codec::encode(px, format, &EncodeOptions::default()).expect("the fixture encodes")
}

/// The control image: a 64 x 48 PNG.
fn control_png() -> Vec<u8> {
    encode(&crate::samples::pattern(64, 48), Format::Png)
}

// ---------------------------------------------------------------------------------------------
// Mutations of any file.

/// Lengths to cut a file of `len` bytes at: the first bytes one by one, at and one byte before
/// each of the format's `headers` boundaries (a header complete with nothing after it, and one
/// byte short), 15 lengths spread over the file, and the last bytes.
fn cut_points(len: usize, headers: &[usize]) -> Vec<usize> {
    let mut at: Vec<usize> = vec![0, 1, 2, 3, 4, 5, 7, 8, 11, 12, 16, 24, 32];
    at.extend(headers.iter().flat_map(|&h| [h.saturating_sub(1), h]));
    at.extend((1..16).map(|k| len * k / 16));
    at.extend([len.saturating_sub(2), len.saturating_sub(1)]);
    at.retain(|&n| n < len);
    at.sort_unstable();
    at.dedup();
    at
}

/// `bytes` cut at every [`cut_points`] length: `{prefix}-trunc-{length}`.
fn truncations(format: &'static str, prefix: &str, bytes: &[u8], headers: &[usize]) -> Vec<Case> {
    cut_points(bytes.len(), headers)
        .into_iter()
        .map(|n| Case::hostile(format, format!("{prefix}-trunc-{n}"), bytes[..n].to_vec()))
        .collect()
}

/// `bytes` corrupted, seeded by `seed`: one byte flipped in each twelfth of the file, one byte
/// of the first 64 (the headers) set to 0x00 or 0xFF, and a run of 2 to 64 random bytes over
/// each eighth.
fn corruptions(format: &'static str, prefix: &str, bytes: &[u8], seed: u64) -> Vec<Case> {
    let mut rng = Rng::new(seed);
    let n = bytes.len();
    let mut out = Vec::new();
    for k in 0..12 {
        let at = (n * k / 12 + rng.below(n / 12 + 1)).min(n - 1);
        let flip = rng.byte() | 1;
        let b = patched(bytes, |b| b[at] ^= flip);
        out.push(Case::hostile(
            format,
            format!("{prefix}-flip{k}-at-{at}"),
            b,
        ));
    }
    for k in 0..6 {
        let at = rng.below(n.min(64));
        let value = if k % 2 == 0 { 0xFF } else { 0x00 };
        let b = patched(bytes, |b| b[at] = value);
        out.push(Case::hostile(
            format,
            format!("{prefix}-head{k}-at-{at}"),
            b,
        ));
    }
    for k in 0..8 {
        let at = (n * k / 8 + rng.below(n / 8 + 1)).min(n - 1);
        let len = (2 + rng.below(63)).min(n - at);
        let run = rng.bytes(len);
        let b = patched(bytes, |b| b[at..at + len].copy_from_slice(&run));
        out.push(Case::hostile(
            format,
            format!("{prefix}-smash{k}-at-{at}-{len}"),
            b,
        ));
    }
    out
}

/// The truncations and corruptions of a base file.
fn mutations(
    format: &'static str,
    prefix: &str,
    bytes: &[u8],
    headers: &[usize],
    seed: u64,
) -> Vec<Case> {
    let mut cases = truncations(format, prefix, bytes, headers);
    cases.extend(corruptions(format, prefix, bytes, seed));
    cases
}
