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

/// A little-endian EXIF TIFF (as in a JPEG's APP1 or a PNG's eXIf) of one IFD that says it has
/// `count` entries, holds one (Orientation `orientation`), and whose next IFD is at `next`.
fn exif_tiff(count: u16, orientation: u16, next: u32) -> Vec<u8> {
    let mut t = b"II*\0".to_vec();
    t.extend_from_slice(&8u32.to_le_bytes());
    t.extend_from_slice(&count.to_le_bytes());
    t.extend_from_slice(&tiff_entry_bytes(274, 3, 1, u32::from(orientation)));
    t.extend_from_slice(&next.to_le_bytes());
    t
}

// ---------------------------------------------------------------------------------------------
// JPEG.

/// Whether `m` is a start-of-frame marker.
fn is_sof(m: u8) -> bool {
    (0xC0..=0xCF).contains(&m) && ![0xC4, 0xC8, 0xCC].contains(&m)
}

/// The marker segments of a JPEG up to its first SOS: (offset, marker, length with the marker).
fn jpeg_segments(b: &[u8]) -> Vec<(usize, u8, usize)> {
    let mut out = Vec::new();
    let mut at = 2;
    while at + 4 <= b.len() && b[at] == 0xFF {
        let marker = b[at + 1];
        let len = 2 + be16(b, at + 2);
        out.push((at, marker, len));
        if marker == 0xDA {
            break;
        }
        at += len;
    }
    out
}

/// The offset of the first segment whose marker `is`.
fn jpeg_segment(b: &[u8], is: impl Fn(u8) -> bool) -> usize {
    jpeg_segments(b)
        .into_iter()
        .find(|s| is(s.1))
        .map(|s| s.0)
        .expect("the fixture has the segment")
}

/// A JPEG whose SOF says `width` x `height`.
fn jpeg_with_size(b: &[u8], width: u16, height: u16) -> Vec<u8> {
    let sof = jpeg_segment(b, is_sof);
    patched(b, |b| {
        put_be16(b, sof + 5, height);
        put_be16(b, sof + 7, width);
    })
}

/// An APP1 segment holding `tiff` as EXIF.
fn app1_exif(tiff: &[u8]) -> Vec<u8> {
    let mut seg: Vec<u8> = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    seg.extend_from_slice(b"Exif\0\0");
    seg.extend_from_slice(tiff);
    seg
}

/// The JPEG suite: the base (300 x 200), a rotated one, mutations and specials.
fn jpeg_cases() -> Vec<Case> {
    const F: &str = "jpeg";
    let base = encode(&base_pixels(), Format::Jpg);
    let segments = jpeg_segments(&base);
    let sof = jpeg_segment(&base, is_sof);
    let sos = jpeg_segment(&base, |m| m == 0xDA);
    let dht = jpeg_segment(&base, |m| m == 0xC4);
    let dqt = jpeg_segment(&base, |m| m == 0xDB);
    let scan = sos + 2 + be16(&base, sos + 2);
    let end = base.len() - 2;
    let mut headers: Vec<usize> = segments.iter().map(|s| s.0).collect();
    headers.push(scan);

    let mut cases = vec![
        Case::valid(F, "jpeg-base", base.clone(), BASE),
        Case::valid(
            F,
            "jpeg-exif-rotated",
            splice(&base, 2, 0, &app1_exif(&exif_tiff(1, 6, 0))),
            (BASE.1, BASE.0),
        ),
    ];
    cases.extend(mutations(F, "jpeg", &base, &headers, 1));

    let byte_at = |at: usize, v: u8| patched(&base, |b| b[at] = v);
    let length_at = |at: usize, v: u16| patched(&base, |b| put_be16(b, at + 2, v));
    let scan_of = |fill: fn(usize) -> u8| {
        patched(&base, |b| {
            for (i, x) in b[scan..end].iter_mut().enumerate() {
                *x = fill(i);
            }
        })
    };
    let with_fill = {
        let mut b: Vec<u8> = vec![0xFF, 0xD8];
        b.extend(std::iter::repeat_n(0xFF, 65_536));
        b.extend_from_slice(&[0xFF, 0xD9]);
        b
    };
    cases.extend(named(
        F,
        "jpeg",
        vec![
            ("sof-65535x65535", jpeg_with_size(&base, 65535, 65535)),
            ("sof-0-high", jpeg_with_size(&base, 300, 0)),
            ("sof-0-wide", jpeg_with_size(&base, 0, 200)),
            ("sof-65535x1", jpeg_with_size(&base, 65535, 1)),
            ("sof-1x65535", jpeg_with_size(&base, 1, 65535)),
            ("sof-precision-12", byte_at(sof + 4, 12)),
            ("sof-precision-0", byte_at(sof + 4, 0)),
            ("sof-components-0", byte_at(sof + 9, 0)),
            ("sof-components-255", byte_at(sof + 9, 255)),
            ("sof-sampling-0", byte_at(sof + 11, 0x00)),
            ("sof-sampling-ff", byte_at(sof + 11, 0xFF)),
            ("sof-table-9", byte_at(sof + 12, 9)),
            ("sof-length-0", length_at(sof, 0)),
            ("sof-length-ffff", length_at(sof, 0xFFFF)),
            ("sof-as-progressive", byte_at(sof + 1, 0xC2)),
            ("sof-as-lossless", byte_at(sof + 1, 0xC3)),
            ("sof-as-arithmetic", byte_at(sof + 1, 0xC9)),
            ("no-sof", byte_at(sof + 1, 0xEF)),
            ("first-segment-length-0", length_at(2, 0)),
            ("first-segment-length-1", length_at(2, 1)),
            ("first-segment-length-ffff", length_at(2, 0xFFFF)),
            (
                "dht-counts-ff",
                patched(&base, |b| b[dht + 5..dht + 21].fill(0xFF)),
            ),
            ("dht-class-ff", byte_at(dht + 4, 0xFF)),
            ("dqt-table-ff", byte_at(dqt + 4, 0xFF)),
            ("sos-components-4", byte_at(sos + 4, 4)),
            ("sos-components-0", byte_at(sos + 4, 0)),
            (
                "dri-1-without-restarts",
                splice(&base, sof, 0, &[0xFF, 0xDD, 0, 4, 0, 1]),
            ),
            (
                "exif-loop",
                splice(&base, 2, 0, &app1_exif(&exif_tiff(1, 1, 8))),
            ),
            (
                "exif-count-65535",
                splice(&base, 2, 0, &app1_exif(&exif_tiff(0xFFFF, 1, 0))),
            ),
            (
                "exif-orientation-9999",
                splice(&base, 2, 0, &app1_exif(&exif_tiff(1, 9999, 0))),
            ),
            (
                "exif-ifd-past-end",
                splice(&base, 2, 0, &app1_exif(&exif_tiff(1, 6, 0xFFFF_FF00))),
            ),
            ("soi-eoi", vec![0xFF, 0xD8, 0xFF, 0xD9]),
            ("soi-fill-bytes", with_fill),
            ("scan-zeros", scan_of(|_| 0)),
            (
                "scan-stuffed-ones",
                scan_of(|i| if i % 2 == 0 { 0xFF } else { 0x00 }),
            ),
            (
                "scan-restart-markers",
                scan_of(|i| {
                    if i % 2 == 0 {
                        0xFF
                    } else {
                        0xD0 + (i / 2 % 8) as u8
                    }
                }),
            ),
            ("sof-65535-scan-zeros", {
                let b = jpeg_with_size(&base, 65535, 65535);
                patched(&b, |b| b[scan..end].fill(0))
            }),
        ],
    ));
    cases
}

// ---------------------------------------------------------------------------------------------
// PNG.

/// One PNG chunk, its CRC computed.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[4..]);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// An IHDR chunk.
fn png_ihdr(width: u32, height: u32, depth: u8, color: u8, interlace: u8) -> Vec<u8> {
    let mut data = width.to_be_bytes().to_vec();
    data.extend_from_slice(&height.to_be_bytes());
    data.extend_from_slice(&[depth, color, 0, 0, interlace]);
    png_chunk(b"IHDR", &data)
}

/// A PNG of `ihdr`, the `middle` chunks and IEND.
fn png_file(ihdr: Vec<u8>, middle: &[Vec<u8>]) -> Vec<u8> {
    let mut out = PNG_SIGNATURE.to_vec();
    out.extend(ihdr);
    for chunk in middle {
        out.extend_from_slice(chunk);
    }
    out.extend(png_chunk(b"IEND", &[]));
    out
}

/// The chunks of a PNG: (offset, type, data length), as far as they fit in the file.
fn png_chunks(b: &[u8]) -> Vec<(usize, [u8; 4], usize)> {
    let mut out = Vec::new();
    let mut at = 8;
    while at + 12 <= b.len() {
        let len = be32(b, at);
        if len > b.len() - at - 12 {
            break;
        }
        let kind = [b[at + 4], b[at + 5], b[at + 6], b[at + 7]];
        out.push((at, kind, len));
        at += 12 + len;
    }
    out
}

/// Recompute the CRC of every chunk that fits, so that corruptions reach the decoder.
fn png_fix_crcs(b: &mut [u8]) {
    for (at, _, len) in png_chunks(b) {
        let crc = crc32(&b[at + 4..at + 8 + len]);
        put_be32(b, at + 8 + len, crc);
    }
}

/// A PNG with its 13 IHDR data bytes changed by `edit`, and the CRC fixed.
fn png_set_ihdr(base: &[u8], edit: impl FnOnce(&mut [u8])) -> Vec<u8> {
    patched(base, |b| {
        edit(&mut b[16..29]);
        let crc = crc32(&b[12..29]);
        put_be32(b, 29, crc);
    })
}

/// A PNG whose IHDR says `width` x `height`.
fn png_with_size(base: &[u8], width: u32, height: u32) -> Vec<u8> {
    png_set_ihdr(base, |d| {
        d[..4].copy_from_slice(&width.to_be_bytes());
        d[4..8].copy_from_slice(&height.to_be_bytes());
    })
}

/// An fcTL chunk's data: frame 0 of `w` x `h` at `x`, `y`.
fn png_fctl(w: u32, h: u32, x: u32, y: u32) -> Vec<u8> {
    let mut d = 0u32.to_be_bytes().to_vec();
    for v in [w, h, x, y] {
        d.extend_from_slice(&v.to_be_bytes());
    }
    d.extend_from_slice(&[0, 1, 0, 1, 0, 0]);
    d
}

/// An acTL chunk's data.
fn png_actl(frames: u32, plays: u32) -> Vec<u8> {
    let mut d = frames.to_be_bytes().to_vec();
    d.extend_from_slice(&plays.to_be_bytes());
    d
}

/// The PNG suite: the base (300 x 200 RGB), a hand-made gray one, mutations (corruptions with
/// and without fixed CRCs) and specials.
fn png_cases() -> Vec<Case> {
    const F: &str = "png";
    let base = encode(&base_pixels(), Format::Png);
    let chunks = png_chunks(&base);
    let idat = chunks.iter().find(|c| &c.1 == b"IDAT").expect("an IDAT").0;
    let headers: Vec<usize> = chunks.iter().flat_map(|c| [c.0, c.0 + 8]).collect();
    let rows: Vec<u8> = gradient(64, 48)
        .chunks(64)
        .flat_map(|row| std::iter::once(0).chain(row.iter().copied()))
        .collect();
    let handmade = png_file(
        png_ihdr(64, 48, 8, 0, 0),
        &[png_chunk(b"IDAT", &zlib(&rows))],
    );

    let mut cases = vec![
        Case::valid(F, "png-base", base.clone(), BASE),
        Case::valid(F, "png-handmade-gray", handmade, (64, 48)),
    ];
    cases.extend(mutations(F, "png", &base, &headers, 2));
    cases.extend(
        corruptions(F, "png-crcfixed", &base, 3)
            .into_iter()
            .map(|mut c| {
                png_fix_crcs(&mut c.bytes);
                c
            }),
    );

    let ihdr_byte = |at: usize, v: u8| png_set_ihdr(&base, |d| d[at] = v);
    let before_idat = |chunks: &[Vec<u8>]| splice(&base, idat, 0, &chunks.concat());
    let z64 = zlib_zeros(64 << 20);
    let with_z64 = |head: &[u8]| [head, z64.as_slice()].concat();
    let empty_idats: Vec<Vec<u8>> = (0..100_000).map(|_| png_chunk(b"IDAT", &[])).collect();
    cases.extend(named(
        F,
        "png",
        vec![
            ("ihdr-65535x65535", png_with_size(&base, 65535, 65535)),
            ("ihdr-0x0", png_with_size(&base, 0, 0)),
            ("ihdr-0x200", png_with_size(&base, 0, 200)),
            ("ihdr-300x0", png_with_size(&base, 300, 0)),
            (
                "ihdr-2147483647-square",
                png_with_size(&base, 0x7FFF_FFFF, 0x7FFF_FFFF),
            ),
            ("ihdr-1x2147483647", png_with_size(&base, 1, 0x7FFF_FFFF)),
            ("ihdr-4294967295x1", png_with_size(&base, u32::MAX, 1)),
            ("ihdr-depth-3", ihdr_byte(8, 3)),
            ("ihdr-depth-16", ihdr_byte(8, 16)),
            ("ihdr-color-5", ihdr_byte(9, 5)),
            ("ihdr-gray", ihdr_byte(9, 0)),
            ("ihdr-palette-without-plte", ihdr_byte(9, 3)),
            ("ihdr-compression-1", ihdr_byte(10, 1)),
            ("ihdr-filter-1", ihdr_byte(11, 1)),
            ("ihdr-interlaced", ihdr_byte(12, 1)),
            ("ihdr-interlace-7", ihdr_byte(12, 7)),
            ("ihdr-bad-crc", patched(&base, |b| b[29] ^= 0xFF)),
            (
                "ihdr-length-huge",
                patched(&base, |b| put_be32(b, 8, 0x7FFF_FFFF)),
            ),
            ("ihdr-length-0", patched(&base, |b| put_be32(b, 8, 0))),
            (
                "idat-length-huge",
                patched(&base, |b| put_be32(b, idat, 0x7FFF_FFFF)),
            ),
            ("zlib-header-ffff", {
                let mut b = patched(&base, |b| b[idat + 8..idat + 10].fill(0xFF));
                png_fix_crcs(&mut b);
                b
            }),
            ("zlib-preset-dictionary", {
                let mut b = patched(&base, |b| b[idat + 9] = 0xBB);
                png_fix_crcs(&mut b);
                b
            }),
            ("zlib-data-zeros", {
                let len = be32(&base, idat);
                let mut b = patched(&base, |b| b[idat + 10..idat + 8 + len].fill(0));
                png_fix_crcs(&mut b);
                b
            }),
            ("many-empty-idat", before_idat(&empty_idats)),
            (
                "idat-missing",
                [&base[..idat], png_chunk(b"IEND", &[]).as_slice()].concat(),
            ),
            ("iend-first", splice(&base, 8, 0, &png_chunk(b"IEND", &[]))),
            (
                // 16 Mpx of zeros in 16 KB: a real image, decoded (slowly in a debug build).
                "deflate-bomb-4000x4000",
                png_file(
                    png_ihdr(4_000, 4_000, 8, 0, 0),
                    &[png_chunk(b"IDAT", &zlib_zeros(4_001 * 4_000))],
                ),
            ),
            (
                "deflate-trailing-bomb",
                png_file(
                    png_ihdr(64, 64, 8, 0, 0),
                    &[png_chunk(b"IDAT", &zlib_zeros(100 << 20))],
                ),
            ),
            (
                "deflate-bomb-65535-rgba",
                png_file(
                    png_ihdr(65535, 65535, 8, 6, 0),
                    &[png_chunk(b"IDAT", &zlib_zeros(16 << 20))],
                ),
            ),
            (
                "deflate-bomb-interlaced-20000",
                png_file(
                    png_ihdr(20_000, 20_000, 8, 0, 1),
                    &[png_chunk(b"IDAT", &zlib_zeros(16 << 20))],
                ),
            ),
            (
                "iccp-bomb",
                before_idat(&[png_chunk(b"iCCP", &with_z64(b"icc\0\0"))]),
            ),
            (
                "ztxt-bomb",
                before_idat(&[png_chunk(b"zTXt", &with_z64(b"Comment\0\0"))]),
            ),
            (
                "itxt-bomb",
                before_idat(&[png_chunk(b"iTXt", &with_z64(b"Comment\0\x01\x00\0\0"))]),
            ),
            (
                "exif-loop",
                before_idat(&[png_chunk(b"eXIf", &exif_tiff(1, 1, 8))]),
            ),
            (
                "exif-count-65535",
                before_idat(&[png_chunk(b"eXIf", &exif_tiff(0xFFFF, 1, 0))]),
            ),
            (
                "exif-orientation-9999",
                before_idat(&[png_chunk(b"eXIf", &exif_tiff(1, 9999, 0))]),
            ),
            (
                "actl-frame-bomb",
                before_idat(&[
                    png_chunk(b"acTL", &png_actl(0x7FFF_FFFF, 0)),
                    png_chunk(b"fcTL", &png_fctl(65535, 65535, 0, 0)),
                ]),
            ),
            (
                "fctl-offset-bomb",
                before_idat(&[
                    png_chunk(b"acTL", &png_actl(1, 0)),
                    png_chunk(b"fcTL", &png_fctl(300, 200, 0xFFFF_FF00, 0xFFFF_FF00)),
                ]),
            ),
            (
                "actl-zero-frames",
                before_idat(&[png_chunk(b"acTL", &png_actl(0, 0))]),
            ),
        ],
    ));
    cases
}

// ---------------------------------------------------------------------------------------------
// TIFF.

/// One entry of a hand-written IFD: tag, type (3 SHORT, 4 LONG) and values.
struct Field(u16, u16, Vec<u32>);

/// The 12 bytes of a classic little-endian IFD entry holding `value` in its value field.
fn tiff_entry_bytes(tag: u16, typ: u16, count: u32, value: u32) -> [u8; 12] {
    let mut e = [0u8; 12];
    e[..2].copy_from_slice(&tag.to_le_bytes());
    e[2..4].copy_from_slice(&typ.to_le_bytes());
    e[4..8].copy_from_slice(&count.to_le_bytes());
    e[8..].copy_from_slice(&value.to_le_bytes());
    e
}

/// A classic little-endian TIFF of one image: `data` at offset 8, then the IFD of `fields`
/// (sorted), then the values that do not fit in their entries.
fn tiff_file(data: &[u8], fields: &[Field]) -> Vec<u8> {
    let mut out = b"II*\0\0\0\0\0".to_vec();
    out.extend_from_slice(data);
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let ifd = out.len();
    put_le32(&mut out, 4, ifd as u32);
    let mut sorted: Vec<&Field> = fields.iter().collect();
    sorted.sort_by_key(|f| f.0);
    out.resize(ifd + 2 + 12 * sorted.len() + 4, 0);
    put_le16(&mut out, ifd, sorted.len() as u16);
    for (i, f) in sorted.into_iter().enumerate() {
        let e = ifd + 2 + 12 * i;
        let bytes: Vec<u8> =
            f.2.iter()
                .flat_map(|&v| match f.1 {
                    3 => (v as u16).to_le_bytes().to_vec(),
                    _ => v.to_le_bytes().to_vec(),
                })
                .collect();
        put_le16(&mut out, e, f.0);
        put_le16(&mut out, e + 2, f.1);
        put_le32(&mut out, e + 4, f.2.len() as u32);
        if bytes.len() <= 4 {
            out[e + 8..e + 8 + bytes.len()].copy_from_slice(&bytes);
        } else {
            let at = out.len();
            out.extend_from_slice(&bytes);
            put_le32(&mut out, e + 8, at as u32);
        }
    }
    out
}

/// A TIFF of one strip: `width` x `height`, `samples` 8-bit samples a pixel, `compression`,
/// `photometric`, all rows in `strip`.
fn strip_tiff(
    width: u32,
    height: u32,
    samples: u16,
    compression: u16,
    photometric: u16,
    strip: &[u8],
) -> Vec<u8> {
    tiff_file(
        strip,
        &[
            Field(256, 4, vec![width]),
            Field(257, 4, vec![height]),
            Field(258, 3, vec![8; usize::from(samples)]),
            Field(259, 3, vec![u32::from(compression)]),
            Field(262, 3, vec![u32::from(photometric)]),
            Field(273, 4, vec![8]),
            Field(277, 3, vec![u32::from(samples)]),
            Field(278, 4, vec![height]),
            Field(279, 4, vec![strip.len() as u32]),
        ],
    )
}

/// Where the next-IFD offset of the IFD at `ifd` is.
fn tiff_next_field(b: &[u8], ifd: usize) -> usize {
    ifd + 2 + 12 * le16(b, ifd)
}

/// The IFDs of the main chain of a classic little-endian TIFF (stopping at a loop).
fn tiff_chain(b: &[u8]) -> Vec<usize> {
    assert!(b.starts_with(b"II*\0"), "a classic little-endian TIFF");
    let mut out = Vec::new();
    let mut at = le32(b, 4);
    while at != 0 && at + 2 <= b.len() && !out.contains(&at) && out.len() < 16 {
        out.push(at);
        at = le32(b, tiff_next_field(b, at));
    }
    out
}

/// The offset of the entry of `tag` in the IFD at `ifd`.
fn tiff_entry(b: &[u8], ifd: usize, tag: u16) -> Option<usize> {
    (0..le16(b, ifd))
        .map(|i| ifd + 2 + 12 * i)
        .find(|&e| le16(b, e) == usize::from(tag))
}

/// The entry of `tag` in IFD `index` of the main chain (which must have it).
fn tiff_entry_in(b: &[u8], index: usize, tag: u16) -> usize {
    tiff_entry(b, tiff_chain(b)[index], tag).unwrap_or_else(|| panic!("no tag {tag}"))
}

/// A copy of `b` with IFD `index` of the main chain rewritten at the end of the file with the
/// entries `make` gives (from the new IFD's offset) added or replacing those of their tags, and
/// the offset that pointed at it pointing at the new one.
fn tiff_with_entries(b: &[u8], index: usize, make: impl FnOnce(usize) -> Vec<[u8; 12]>) -> Vec<u8> {
    let chain = tiff_chain(b);
    let old = chain[index];
    let mut entries: Vec<[u8; 12]> = (0..le16(b, old))
        .map(|i| {
            let at = old + 2 + 12 * i;
            <[u8; 12]>::try_from(&b[at..at + 12]).expect("12 bytes")
        })
        .collect();
    let mut out = b.to_vec();
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let new = out.len();
    let extra = make(new);
    entries.retain(|e| !extra.iter().any(|x| x[..2] == e[..2]));
    entries.extend(extra);
    entries.sort_by_key(|e| u16::from_le_bytes([e[0], e[1]]));
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for e in &entries {
        out.extend_from_slice(e);
    }
    let next = tiff_next_field(b, old);
    out.extend_from_slice(&b[next..next + 4]);
    let pointer = match index {
        0 => 4,
        _ => tiff_next_field(b, chain[index - 1]),
    };
    put_le32(&mut out, pointer, new as u32);
    out
}

/// A copy of `b` with `tag` of IFD `index` set to one `value` of type `typ` (added if missing).
fn tiff_put(b: &[u8], index: usize, tag: u16, typ: u16, value: u32) -> Vec<u8> {
    tiff_with_entries(b, index, |_| vec![tiff_entry_bytes(tag, typ, 1, value)])
}

/// A copy of `b` with ImageWidth and ImageLength of IFD `index` set.
fn tiff_with_size(b: &[u8], index: usize, width: u32, height: u32) -> Vec<u8> {
    tiff_put(&tiff_put(b, index, 256, 4, width), index, 257, 4, height)
}

/// A copy of `b` with every value of `tag` (SHORT or LONG, in the entry or not) of IFD `index`
/// set to `value` (clamped for SHORT).
fn tiff_set_all(b: &[u8], index: usize, tag: u16, value: u32) -> Vec<u8> {
    let e = tiff_entry_in(b, index, tag);
    let size = if le16(b, e + 2) == 3 { 2 } else { 4 };
    let count = le32(b, e + 4);
    let at = if count * size <= 4 {
        e + 8
    } else {
        le32(b, e + 8)
    };
    patched(b, |b| {
        for i in 0..count {
            match size {
                2 => put_le16(b, at + 2 * i, value.min(0xFFFF) as u16),
                _ => put_le32(b, at + 4 * i, value),
            }
        }
    })
}

/// A copy of `b` with the count field of `tag` of IFD `index` set.
fn tiff_set_count(b: &[u8], index: usize, tag: u16, count: u32) -> Vec<u8> {
    let e = tiff_entry_in(b, index, tag);
    patched(b, |b| put_le32(b, e + 4, count))
}

/// A copy of `b` with the value field (a value or an offset) of `tag` of IFD `index` set.
fn tiff_set_value_field(b: &[u8], index: usize, tag: u16, value: u32) -> Vec<u8> {
    let e = tiff_entry_in(b, index, tag);
    patched(b, |b| put_le32(b, e + 8, value))
}

/// The truncation boundaries of a TIFF: the header, and each IFD's start, entries and end.
fn tiff_headers(b: &[u8]) -> Vec<usize> {
    let mut at = vec![4, 8];
    for ifd in tiff_chain(b) {
        at.extend([
            ifd,
            ifd + 2,
            ifd + 14,
            tiff_next_field(b, ifd),
            tiff_next_field(b, ifd) + 4,
        ]);
    }
    at
}

/// The strip TIFF suite: the crate's encoder's TIFF (300 x 200 RGB, Deflate), hand-made gray
/// ones (Deflate, LZW), mutations and specials.
fn strip_tiff_cases() -> Vec<Case> {
    const F: &str = "tiff-strip";
    let base = encode(&base_pixels(), Format::Tif);
    let ifd = tiff_chain(&base)[0];
    let end = tiff_next_field(&base, ifd);
    let len = base.len() as u32;
    let gray = gradient(64, 48);

    let mut cases = vec![
        Case::valid(F, "tiff-strip-base", base.clone(), BASE),
        Case::valid(
            F,
            "tiff-strip-handmade-deflate",
            strip_tiff(64, 48, 1, 8, 1, &zlib(&gray)),
            (64, 48),
        ),
        Case::valid(
            F,
            "tiff-strip-handmade-lzw",
            strip_tiff(64, 48, 1, 5, 1, &lzw_tiff(&gray)),
            (64, 48),
        ),
    ];
    cases.extend(mutations(F, "tiff-strip", &base, &tiff_headers(&base), 4));

    let put = |tag: u16, typ: u16, v: u32| tiff_put(&base, 0, tag, typ, v);
    let all = |tag: u16, v: u32| tiff_set_all(&base, 0, tag, v);
    let header = |at: usize, v: u32| patched(&base, |b| put_le32(b, at, v));
    let entry_type = |v: u16| {
        let e = tiff_entry_in(&base, 0, 256);
        patched(&base, |b| put_le16(b, e + 2, v))
    };
    let mut rng = Rng::new(5);
    let big_tiff = |offset_size: u16, first: u64, tail: Vec<u8>| {
        let mut b = b"II+\0".to_vec();
        b.extend_from_slice(&offset_size.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&first.to_le_bytes());
        b.extend(tail);
        b
    };
    cases.extend(named(
        F,
        "tiff-strip",
        vec![
            ("65535x65535", tiff_with_size(&base, 0, 65535, 65535)),
            ("100000x100000", tiff_with_size(&base, 0, 100_000, 100_000)),
            ("0-wide", put(256, 4, 0)),
            ("0-high", put(257, 4, 0)),
            ("1x4294967295", tiff_with_size(&base, 0, 1, u32::MAX)),
            ("rows-per-strip-0", put(278, 4, 0)),
            ("rows-per-strip-max", put(278, 4, u32::MAX)),
            ("rows-per-strip-1", put(278, 4, 1)),
            ("offsets-past-end", all(273, len + 1000)),
            ("offsets-max", all(273, u32::MAX - 16)),
            ("counts-huge", all(279, 0xFFFF_FFF0)),
            ("counts-0", all(279, 0)),
            (
                "offsets-count-huge",
                tiff_set_count(&base, 0, 273, 0x3FFF_FFFF),
            ),
            (
                "counts-count-huge",
                tiff_set_count(&base, 0, 279, 0x3FFF_FFFF),
            ),
            ("offsets-count-0", tiff_set_count(&base, 0, 273, 0)),
            ("bits-0", all(258, 0)),
            ("bits-3", all(258, 3)),
            ("bits-16", all(258, 16)),
            ("bits-64", all(258, 64)),
            (
                "bits-count-huge",
                tiff_set_count(&base, 0, 258, 0x3FFF_FFFF),
            ),
            ("samples-0", put(277, 3, 0)),
            ("samples-1", put(277, 3, 1)),
            ("samples-65535", put(277, 3, 65535)),
            ("compression-12345", put(259, 3, 12345)),
            ("compression-lzw-on-deflate", put(259, 3, 5)),
            ("compression-jpeg-on-deflate", put(259, 3, 7)),
            ("compression-old-jpeg", put(259, 3, 6)),
            ("compression-packbits-on-deflate", put(259, 3, 32773)),
            ("compression-zstd-on-deflate", put(259, 3, 50000)),
            ("compression-none-on-deflate", put(259, 3, 1)),
            ("compression-fax3-on-deflate", put(259, 3, 3)),
            ("compression-fax4-on-deflate", put(259, 3, 4)),
            (
                "fax4-garbage",
                strip_tiff(64, 64, 1, 4, 0, &rng.bytes(4096)),
            ),
            (
                "fax4-garbage-65535",
                strip_tiff(65535, 65535, 1, 4, 0, &rng.bytes(4096)),
            ),
            ("gray-with-3-samples", put(262, 3, 1)),
            ("palette-without-colormap", put(262, 3, 3)),
            ("photometric-ycbcr", put(262, 3, 6)),
            ("photometric-cmyk-3-samples", put(262, 3, 5)),
            ("photometric-cielab", put(262, 3, 8)),
            ("photometric-999", put(262, 3, 999)),
            ("planar-2", put(284, 3, 2)),
            ("planar-9", put(284, 3, 9)),
            ("predictor-2", put(317, 3, 2)),
            ("predictor-3", put(317, 3, 3)),
            ("predictor-99", put(317, 3, 99)),
            ("orientation-0", put(274, 3, 0)),
            ("orientation-8", put(274, 3, 8)),
            ("orientation-9999", put(274, 3, 9999)),
            ("extra-samples-99", put(338, 3, 99)),
            ("sample-format-float", put(339, 3, 3)),
            ("sample-format-signed", put(339, 3, 2)),
            ("entry-type-0", entry_type(0)),
            ("entry-type-99", entry_type(99)),
            ("ifd-past-end", header(4, len + 100)),
            ("ifd-max", header(4, u32::MAX - 1)),
            ("ifd-0", header(4, 0)),
            ("ifd-in-header", header(4, 2)),
            ("ifd-odd", header(4, ifd as u32 + 1)),
            ("entries-65535", patched(&base, |b| put_le16(b, ifd, 65535))),
            ("entries-0", patched(&base, |b| put_le16(b, ifd, 0))),
            ("ifd-loop-self", header(end, ifd as u32)),
            ("next-ifd-past-end", header(end, len + 100)),
            ("next-ifd-in-header", header(end, 4)),
            (
                "subifd-self",
                tiff_with_entries(&base, 0, |new| {
                    vec![tiff_entry_bytes(330, 13, 1, new as u32)]
                }),
            ),
            (
                "subifds-count-huge",
                tiff_with_entries(&base, 0, |_| {
                    vec![tiff_entry_bytes(330, 4, 0x3FFF_FFFF, len + 64)]
                }),
            ),
            (
                "exif-ifd-self",
                tiff_with_entries(&base, 0, |new| {
                    vec![tiff_entry_bytes(34665, 4, 1, new as u32)]
                }),
            ),
            (
                "deflate-bomb",
                strip_tiff(64, 64, 1, 8, 1, &zlib_zeros(100 << 20)),
            ),
            (
                "deflate-bomb-1000",
                strip_tiff(1000, 1000, 1, 8, 1, &zlib_zeros(100 << 20)),
            ),
            (
                "deflate-bomb-65535",
                strip_tiff(65535, 65535, 3, 8, 2, &zlib_zeros(1 << 20)),
            ),
            (
                "lzw-bomb",
                strip_tiff(64, 64, 1, 5, 1, &lzw_tiff(&vec![0; 32 << 20])),
            ),
            ("lzw-garbage", strip_tiff(64, 64, 1, 5, 1, &rng.bytes(4096))),
            (
                "lzw-garbage-65535",
                strip_tiff(65535, 65535, 1, 5, 1, &rng.bytes(65536)),
            ),
            (
                "lzw-clear-codes",
                strip_tiff(64, 64, 1, 5, 1, &lzw_clear_codes(100_000)),
            ),
            (
                "packbits-bomb",
                strip_tiff(64, 64, 1, 32773, 1, &[0x81u8, 0].repeat(100_000)),
            ),
            (
                "deflate-garbage",
                strip_tiff(64, 64, 1, 8, 1, &rng.bytes(4096)),
            ),
            (
                "jpeg-garbage",
                strip_tiff(64, 64, 3, 7, 6, &rng.bytes(4096)),
            ),
            (
                "bigtiff-ifd-past-end",
                big_tiff(8, u64::MAX - 7, rng.bytes(64)),
            ),
            ("bigtiff-offset-size-16", big_tiff(16, 16, vec![0; 64])),
            (
                "bigtiff-entries-huge",
                big_tiff(
                    8,
                    16,
                    [u64::MAX.to_le_bytes().as_slice(), &[0u8; 64][..]].concat(),
                ),
            ),
            (
                "big-endian-entries-65535",
                [
                    b"MM\0*\0\0\0\x08\xFF\xFF".as_slice(),
                    rng.bytes(128).as_slice(),
                ]
                .concat(),
            ),
        ],
    ));
    cases
}

/// The tiled TIFF suite: the Deflate and JPEG pyramids of `crate::tiff::tests` (300 x 200, 150 x
/// 100, 75 x 50 in 64-pixel tiles), mutations and specials of each.
fn tiled_tiff_cases() -> Vec<Case> {
    const F: &str = "tiff-tiled";
    let (deflate, _) = crate::tiff::tests::deflate_rgb_pyramid();
    let (jpeg, _) = crate::tiff::tests::jpeg_rgb_pyramid(false);
    let mut cases = Vec::new();
    for (prefix, file, seed) in [
        ("tiff-pyr-deflate", &deflate, 6),
        ("tiff-pyr-jpeg", &jpeg, 7),
    ] {
        cases.push(Case::valid(F, prefix, file.clone(), BASE));
        cases.extend(mutations(F, prefix, file, &tiff_headers(file), seed));
        cases.extend(named(F, prefix, tiled_specials(file)));
    }
    cases
}

/// The hostile variants of a tiled pyramid's structure.
fn tiled_specials(file: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let chain = tiff_chain(file);
    assert_eq!(chain.len(), 3, "three levels in the main chain");
    let len = file.len() as u32;
    let put = |index: usize, tag: u16, typ: u16, v: u32| tiff_put(file, index, tag, typ, v);
    let tiles = |w: u32, h: u32| tiff_put(&tiff_put(file, 0, 322, 4, w), 0, 323, 4, h);
    let next = |index: usize, target: usize| {
        let at = tiff_next_field(file, chain[index]);
        patched(file, |b| put_le32(b, at, target as u32))
    };
    let subifd = |index: usize, typ: u16, count: u32, value: u32| {
        tiff_with_entries(file, index, |_| {
            vec![tiff_entry_bytes(330, typ, count, value)]
        })
    };
    let mut list = vec![
        ("dims-65535x65535", tiff_with_size(file, 0, 65535, 65535)),
        (
            "dims-100000x100000",
            tiff_with_size(file, 0, 100_000, 100_000),
        ),
        ("dims-0-wide", put(0, 256, 4, 0)),
        (
            "level1-larger-than-level0",
            tiff_with_size(file, 1, 600, 400),
        ),
        (
            "level2-as-large-as-level0",
            tiff_with_size(file, 2, 300, 200),
        ),
        ("level1-0x0", tiff_with_size(file, 1, 0, 0)),
        ("tile-65536", tiles(65536, 65536)),
        ("tile-0", tiles(0, 0)),
        ("tile-17", tiles(17, 17)),
        (
            "tile-16-dims-100000",
            tiff_with_size(&tiles(16, 16), 0, 100_000, 100_000),
        ),
        (
            "tile-offsets-past-end",
            tiff_set_all(file, 0, 324, len + 1000),
        ),
        (
            "tile-offsets-max",
            tiff_set_all(file, 0, 324, u32::MAX - 16),
        ),
        ("tile-counts-huge", tiff_set_all(file, 0, 325, 0xFFFF_FFF0)),
        ("tile-counts-0", tiff_set_all(file, 0, 325, 0)),
        (
            "tile-offsets-count-huge",
            tiff_set_count(file, 0, 324, 0x3FFF_FFFF),
        ),
        ("tile-offsets-count-1", tiff_set_count(file, 0, 324, 1)),
        (
            "tile-offsets-pointer-past-end",
            tiff_set_value_field(file, 0, 324, len + 100),
        ),
        (
            "level1-tile-offsets-past-end",
            tiff_set_all(file, 1, 324, len + 1000),
        ),
        (
            "level2-tile-counts-huge",
            tiff_set_all(file, 2, 325, 0xFFFF_FFF0),
        ),
        ("compression-lzw", put(0, 259, 3, 5)),
        ("compression-deflate", put(0, 259, 3, 8)),
        ("compression-jpeg", put(0, 259, 3, 7)),
        ("compression-12345", put(0, 259, 3, 12345)),
        ("compression-packbits", put(0, 259, 3, 32773)),
        ("compression-zstd", put(0, 259, 3, 50000)),
        ("compression-webp", put(0, 259, 3, 50001)),
        ("compression-fax4", put(0, 259, 3, 4)),
        ("photometric-ycbcr", put(0, 262, 3, 6)),
        ("photometric-palette", put(0, 262, 3, 3)),
        ("samples-1", put(0, 277, 3, 1)),
        ("samples-65535", put(0, 277, 3, 65535)),
        ("bits-0", tiff_set_all(file, 0, 258, 0)),
        ("bits-16", tiff_set_all(file, 0, 258, 16)),
        ("planar-2", put(0, 284, 3, 2)),
        ("predictor-2", put(0, 317, 3, 2)),
        ("orientation-9999", put(0, 274, 3, 9999)),
        ("ifd-loop-self", next(0, chain[0])),
        ("ifd-loop-level1-self", next(1, chain[1])),
        ("ifd-loop-back-to-first", next(2, chain[0])),
        ("ifd-loop-back-to-level1", next(2, chain[1])),
        ("next-ifd-past-end", next(0, file.len() + 100)),
        ("next-ifd-in-header", next(1, 4)),
        (
            "subifd-self",
            tiff_with_entries(file, 0, |new| {
                vec![tiff_entry_bytes(330, 13, 1, new as u32)]
            }),
        ),
        (
            "subifd-first-from-level1",
            subifd(1, 13, 1, chain[0] as u32),
        ),
        (
            "subifd-level1-from-first",
            subifd(0, 13, 1, chain[1] as u32),
        ),
        ("subifds-count-huge", subifd(0, 4, 0x3FFF_FFFF, len + 64)),
        ("subifds-past-end", subifd(0, 13, 1, len + 64)),
        (
            "first-ifd-past-end",
            patched(file, |b| put_le32(b, 4, len + 100)),
        ),
        (
            "entries-65535",
            patched(file, |b| put_le16(b, chain[0], 65535)),
        ),
        (
            "level1-entries-65535",
            patched(file, |b| put_le16(b, chain[1], 65535)),
        ),
        ("level1-not-reduced", put(1, 254, 4, 0)),
    ];
    if tiff_entry(file, chain[0], 347).is_some() {
        list.extend([
            (
                "jpegtables-past-end",
                tiff_set_value_field(file, 0, 347, len + 100),
            ),
            (
                "jpegtables-count-huge",
                tiff_set_count(file, 0, 347, 0x3FFF_FFFF),
            ),
            ("jpegtables-count-2", tiff_set_count(file, 0, 347, 2)),
        ]);
    }
    list
}

// ---------------------------------------------------------------------------------------------
// JPEG 2000.

/// A 300 x 200 RGB JPEG 2000 of OpenJPEG's encoder, lossless, three resolutions: a JP2 file or
/// a raw codestream, in 64-pixel tiles or one tile.
fn jp2_fixture(container: bool, tiled: bool) -> Vec<u8> {
    use crate::jp2::openjpeg::tests::{Opts, encode_fixture, pattern};
    let (w, h) = BASE;
    let opts = Opts {
        resolutions: 3,
        jp2_container: container,
        tiled: tiled.then_some((64, 64)),
        ..Opts::default()
    };
    encode_fixture(w, h, 3, &pattern(w, h, 3), &opts)
}

/// Where the codestream (SOC, SIZ) starts.
fn j2k_start(b: &[u8]) -> usize {
    b.windows(4)
        .position(|w| w == [0xFFu8, 0x4F, 0xFF, 0x51])
        .expect("a codestream")
}

/// The main header's marker segments from SIZ to the first SOT: (offset, marker).
fn j2k_markers(b: &[u8], cs: usize) -> Vec<(usize, u16)> {
    let mut out = Vec::new();
    let mut at = cs + 2;
    while at + 4 <= b.len() {
        let marker = be16(b, at) as u16;
        out.push((at, marker));
        if marker == 0xFF90 || marker >> 8 != 0xFF {
            break;
        }
        at += 2 + be16(b, at + 2);
    }
    out
}

/// The offsets of the tile-parts' SOT markers, from the first one, following their Psot.
fn j2k_tile_parts(b: &[u8], first: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = first;
    while at + 12 <= b.len() && be16(b, at) == 0xFF90 && out.len() < 10_000 {
        out.push(at);
        let psot = be32(b, at + 6);
        if psot == 0 {
            break;
        }
        at += psot;
    }
    out
}

/// The boxes between `start` and `end`: (offset, type, length); a length of 0 runs to `end`.
fn boxes_in(b: &[u8], start: usize, end: usize) -> Vec<(usize, [u8; 4], usize)> {
    let mut out = Vec::new();
    let mut at = start;
    while at + 8 <= end {
        let kind = [b[at + 4], b[at + 5], b[at + 6], b[at + 7]];
        let len = match be32(b, at) {
            0 => end - at,
            1 if at + 16 <= end => {
                u64::from_be_bytes(b[at + 8..at + 16].try_into().expect("eight bytes")) as usize
            }
            n => n,
        };
        out.push((at, kind, len));
        if len < 8 {
            break;
        }
        at += len;
    }
    out
}

/// The top-level box of `kind`: (offset, length).
fn jp2_box(b: &[u8], kind: &[u8; 4]) -> (usize, usize) {
    boxes_in(b, 0, b.len())
        .into_iter()
        .find(|x| &x.1 == kind)
        .map(|x| (x.0, x.2))
        .expect("the fixture has the box")
}

/// One box.
fn jp2_box_bytes(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = ((data.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out
}

/// A JP2 whose jp2h box's children (whole boxes) are changed by `edit`.
fn jp2_with_jp2h(file: &[u8], edit: impl FnOnce(&mut Vec<Vec<u8>>)) -> Vec<u8> {
    let (pos, len) = jp2_box(file, b"jp2h");
    let mut children: Vec<Vec<u8>> = boxes_in(file, pos + 8, pos + len)
        .into_iter()
        .map(|(at, _, l)| file[at..at + l].to_vec())
        .collect();
    edit(&mut children);
    let mut out = file[..pos].to_vec();
    out.extend(jp2_box_bytes(b"jp2h", &children.concat()));
    out.extend_from_slice(&file[pos + len..]);
    out
}

/// A JP2 whose box at `pos` has an XL length of `xl` instead of its 32-bit one.
fn jp2_box_xl(file: &[u8], pos: usize, xl: u64) -> Vec<u8> {
    let mut header: Vec<u8> = vec![0, 0, 0, 1];
    header.extend_from_slice(&file[pos + 4..pos + 8]);
    header.extend_from_slice(&xl.to_be_bytes());
    splice(file, pos, 8, &header)
}

/// Set the jp2c box's length to what follows it (after a splice into the codestream).
fn fix_jp2c_length(b: &mut [u8]) {
    if !b.starts_with(&JP2_SIGNATURE) {
        return;
    }
    if let Some((pos, _, _)) = boxes_in(b, 0, b.len())
        .into_iter()
        .find(|x| &x.1 == b"jp2c")
        && be32(b, pos) > 1
    {
        let len = (b.len() - pos) as u32;
        put_be32(b, pos, len);
    }
}

/// A codestream with `marker` (a whole segment) inserted at `at` (in the main header).
fn j2k_insert(file: &[u8], at: usize, marker: &[u8]) -> Vec<u8> {
    let mut b = splice(file, at, 0, marker);
    fix_jp2c_length(&mut b);
    b
}

/// A JPEG 2000 whose SIZ says `width` x `height` (and, with `tile`, that tile size).
fn j2k_with_size(file: &[u8], width: u32, height: u32, tile: Option<(u32, u32)>) -> Vec<u8> {
    let siz = j2k_start(file) + 2;
    patched(file, |b| {
        put_be32(b, siz + 6, width);
        put_be32(b, siz + 10, height);
        if let Some((tw, th)) = tile {
            put_be32(b, siz + 22, tw);
            put_be32(b, siz + 26, th);
        }
    })
}

/// The truncation boundaries of a JPEG 2000: boxes, main header markers, the first tile-parts.
fn jp2_headers(file: &[u8]) -> Vec<usize> {
    let cs = j2k_start(file);
    let markers = j2k_markers(file, cs);
    let mut at = vec![cs, cs + 2];
    if file.starts_with(&JP2_SIGNATURE) {
        at.extend(
            boxes_in(file, 0, file.len())
                .iter()
                .flat_map(|x| [x.0, x.0 + 8]),
        );
    }
    at.extend(markers.iter().map(|m| m.0));
    if let Some(&(sot, _)) = markers.last() {
        at.extend(
            j2k_tile_parts(file, sot)
                .iter()
                .take(4)
                .flat_map(|&t| [t + 12, t + 14]),
        );
    }
    at
}

/// The JPEG 2000 suite: a tiled JP2 file and an untiled raw codestream, their mutations and
/// codestream specials, the JP2 file's box specials, and a gray JP2 with hostile palettes.
fn jp2_cases() -> Vec<Case> {
    let jp2 = jp2_fixture(true, true);
    let j2k = jp2_fixture(false, false);
    let mut cases = vec![
        Case::valid("jp2", "jp2-base", jp2.clone(), BASE),
        Case::valid("j2k", "j2k-base", j2k.clone(), BASE),
    ];
    cases.extend(mutations("jp2", "jp2", &jp2, &jp2_headers(&jp2), 8));
    cases.extend(mutations("j2k", "j2k", &j2k, &jp2_headers(&j2k), 9));
    cases.extend(named("jp2", "jp2", codestream_specials(&jp2, 10)));
    cases.extend(named("j2k", "j2k", codestream_specials(&j2k, 11)));
    cases.extend(named("jp2", "jp2", jp2_box_specials(&jp2)));
    let gray = jp2_gray_fixture();
    cases.push(Case::valid("jp2", "jp2-gray-base", gray.clone(), BASE));
    cases.extend(named("jp2", "jp2-gray", jp2_palette_specials(&gray)));
    cases
}

/// A 300 x 200 gray JP2 (one component, one tile): the crate reads a palette (`pclr` and
/// `cmap` boxes) itself only for one component.
fn jp2_gray_fixture() -> Vec<u8> {
    use crate::jp2::openjpeg::tests::{Opts, encode_fixture, pattern};
    let (w, h) = BASE;
    let opts = Opts {
        resolutions: 3,
        jp2_container: true,
        ..Opts::default()
    };
    encode_fixture(w, h, 1, &pattern(w, h, 1), &opts)
}

/// Palettes added to a one-component JP2: a plain one, and ones with too many columns, missing
/// or short entries, absurd bit depths, mappings to columns or components that do not exist.
fn jp2_palette_specials(file: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let pclr = |entries: u16, bits: &[u8], values: &[u8]| {
        let mut d = entries.to_be_bytes().to_vec();
        d.push(bits.len() as u8);
        d.extend_from_slice(bits);
        d.extend_from_slice(values);
        jp2_box_bytes(b"pclr", &d)
    };
    let cmap = |columns: u8| {
        let d: Vec<u8> = (0..columns).flat_map(|k| [0, 0, 1, k]).collect();
        jp2_box_bytes(b"cmap", &d)
    };
    let with = |boxes: Vec<Vec<u8>>| jp2_with_jp2h(file, |c| c.extend(boxes));
    let rgb: [u8; 6] = [255, 0, 0, 0, 0, 255];
    vec![
        (
            "palette-rgb",
            with(vec![pclr(2, &[7, 7, 7], &rgb), cmap(3)]),
        ),
        (
            "palette-255-columns",
            with(vec![pclr(2, &[7; 255], &[9; 510]), cmap(255)]),
        ),
        (
            "palette-entries-missing",
            with(vec![pclr(65535, &[7; 255], &[]), cmap(3)]),
        ),
        (
            "palette-entries-short",
            with(vec![pclr(256, &[7, 7, 7], &[1; 10]), cmap(3)]),
        ),
        (
            "palette-bits-38",
            with(vec![pclr(2, &[37, 37, 37], &[0; 30]), cmap(3)]),
        ),
        ("palette-columns-0", with(vec![pclr(2, &[], &[]), cmap(3)])),
        (
            "palette-mapping-past-columns",
            with(vec![pclr(2, &[7, 7, 7], &rgb), cmap(200)]),
        ),
        (
            "palette-mapping-component-9",
            with(vec![
                pclr(2, &[7, 7, 7], &rgb),
                jp2_box_bytes(b"cmap", &[0, 9, 1, 0, 0, 9, 1, 1, 0, 9, 1, 2]),
            ]),
        ),
        (
            "palette-without-mapping",
            with(vec![pclr(2, &[7, 7, 7], &rgb)]),
        ),
        ("mapping-without-palette", with(vec![cmap(3)])),
    ]
}

/// Hostile codestreams: SIZ, COD, QCD, SOT fields, marker lengths, corrupted packets.
fn codestream_specials(file: &[u8], seed: u64) -> Vec<(&'static str, Vec<u8>)> {
    let cs = j2k_start(file);
    let siz = cs + 2;
    let markers = j2k_markers(file, cs);
    let find = |m: u16| {
        markers
            .iter()
            .find(|x| x.1 == m)
            .map(|x| x.0)
            .unwrap_or_else(|| panic!("no marker {m:04X} in the main header"))
    };
    let (cod, qcd, sot) = (find(0xFF52), find(0xFF5C), find(0xFF90));
    let parts = j2k_tile_parts(file, sot);
    let data = (sot + 14).min(file.len());
    let data_end = file.len() - 2;
    let twice = (file.len() * 2) as u32;
    let byte_at = |at: usize, v: u8| patched(file, |b| b[at] = v);
    let be16_at = |at: usize, v: u16| patched(file, |b| put_be16(b, at, v));
    let be32_at = |at: usize, v: u32| patched(file, |b| put_be32(b, at, v));
    let pair_at = |at: usize, v: u32| {
        patched(file, |b| {
            put_be32(b, at, v);
            put_be32(b, at + 4, v);
        })
    };
    let mut rng = Rng::new(seed);
    vec![
        ("siz-0x0", j2k_with_size(file, 0, 0, None)),
        ("siz-65535x65535", j2k_with_size(file, 65535, 65535, None)),
        ("siz-max", j2k_with_size(file, u32::MAX, u32::MAX, None)),
        (
            "siz-65535-one-tile",
            j2k_with_size(file, 65535, 65535, Some((65535, 65535))),
        ),
        ("siz-origin-past-size", be32_at(siz + 14, 301)),
        ("siz-tile-1x1", pair_at(siz + 22, 1)),
        ("siz-tile-0", pair_at(siz + 22, 0)),
        ("siz-tile-origin-past-image", pair_at(siz + 30, 1000)),
        ("siz-components-0", be16_at(siz + 38, 0)),
        ("siz-components-16384", be16_at(siz + 38, 16384)),
        ("siz-depth-38", byte_at(siz + 40, 37)),
        ("siz-depth-255", byte_at(siz + 40, 0xFF)),
        ("siz-subsampling-0", byte_at(siz + 41, 0)),
        ("siz-subsampling-255", byte_at(siz + 41, 255)),
        ("siz-length-0", be16_at(siz + 2, 0)),
        ("siz-length-ffff", be16_at(siz + 2, 0xFFFF)),
        ("cod-levels-32", byte_at(cod + 9, 32)),
        ("cod-levels-33", byte_at(cod + 9, 33)),
        ("cod-levels-255", byte_at(cod + 9, 255)),
        ("cod-codeblock-huge", be16_at(cod + 10, 0x0F0F)),
        ("cod-progression-9", byte_at(cod + 5, 9)),
        ("cod-layers-0", be16_at(cod + 6, 0)),
        ("cod-layers-65535", be16_at(cod + 6, 65535)),
        ("cod-transform-9", byte_at(cod + 13, 9)),
        (
            "cod-precincts-without-sizes",
            byte_at(cod + 4, file[cod + 4] | 1),
        ),
        ("cod-length-0", be16_at(cod + 2, 0)),
        ("cod-length-ffff", be16_at(cod + 2, 0xFFFF)),
        ("qcd-style-ff", byte_at(qcd + 4, 0xFF)),
        ("sot-psot-past-end", be32_at(sot + 6, 0xFFFF_FFF0)),
        ("sot-psot-1", be32_at(sot + 6, 1)),
        ("sot-psot-0", be32_at(sot + 6, 0)),
        ("sot-tile-65535", be16_at(sot + 4, 65535)),
        ("sot-tile-part-255", byte_at(sot + 10, 255)),
        ("sot-length-0", be16_at(sot + 2, 0)),
        (
            "sot-every-psot-past-end",
            patched(file, |b| {
                for &t in &parts {
                    put_be32(b, t + 6, twice);
                }
            }),
        ),
        ("eoc-after-main-header", be16_at(sot, 0xFFD9)),
        (
            "packets-ff",
            patched(file, |b| b[data..(data + 256).min(data_end)].fill(0xFF)),
        ),
        ("packets-zero", patched(file, |b| b[data..data_end].fill(0))),
        (
            "packets-random",
            patched(file, |b| {
                for x in &mut b[data..data_end] {
                    if rng.below(10) == 0 {
                        *x = rng.byte();
                    }
                }
            }),
        ),
        (
            "tlm-bogus",
            j2k_insert(file, sot, &[0xFF, 0x55, 0, 8, 0, 0x70, 1, 2, 3, 4]),
        ),
        (
            "com-length-past-header",
            j2k_insert(file, sot, &[0xFF, 0x64, 0xFF, 0xFF, 0, 1]),
        ),
        ("second-siz", j2k_insert(file, sot, &file[siz..cod])),
    ]
}

/// Broken JP2 boxes.
fn jp2_box_specials(file: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let (ftyp, _) = jp2_box(file, b"ftyp");
    let (jp2h, jp2h_len) = jp2_box(file, b"jp2h");
    let (jp2c, _) = jp2_box(file, b"jp2c");
    let ihdr = boxes_in(file, jp2h + 8, jp2h + jp2h_len)
        .into_iter()
        .find(|x| &x.1 == b"ihdr")
        .expect("an ihdr box")
        .0;
    let ihdr_data = ihdr + 8;
    let len_at = |pos: usize, v: u32| patched(file, |b| put_be32(b, pos, v));
    let kind_at =
        |pos: usize, kind: &[u8; 4]| patched(file, |b| b[pos + 4..pos + 8].copy_from_slice(kind));
    let without =
        |kind: &'static [u8; 4]| jp2_with_jp2h(file, |c| c.retain(|x| x[4..8] != kind[..]));
    let with_children = |extra: Vec<Vec<u8>>| jp2_with_jp2h(file, |c| c.extend(extra));
    let mut icc: Vec<u8> = vec![2, 0, 0];
    icc.extend_from_slice(&u32::MAX.to_be_bytes());
    icc.extend_from_slice(&[0; 124]);
    let mut pclr: Vec<u8> = vec![0xFF, 0xFF, 255];
    pclr.extend_from_slice(&[7; 255]);
    let cmap: [u8; 4] = [0, 0, 1, 200];
    let mut res = jp2_box_bytes(b"res ", &[]);
    put_be32(&mut res, 0, 0x7FFF_FFFF);
    let boxes = boxes_in(file, 0, file.len());
    let jp2c_first: Vec<u8> = {
        let mut out = file[..12].to_vec();
        out.extend_from_slice(&file[jp2c..]);
        for &(at, kind, len) in &boxes[1..] {
            if &kind != b"jp2c" {
                out.extend_from_slice(&file[at..at + len]);
            }
        }
        out
    };
    vec![
        ("ftyp-length-0", len_at(ftyp, 0)),
        ("jp2h-length-0", len_at(jp2h, 0)),
        ("ftyp-length-7", len_at(ftyp, 7)),
        ("jp2h-length-4", len_at(jp2h, 4)),
        ("ihdr-length-0", len_at(ihdr, 0)),
        ("ihdr-length-3", len_at(ihdr, 3)),
        ("jp2h-length-past-end", len_at(jp2h, 0x7FFF_FFFF)),
        (
            "jp2c-length-past-end",
            len_at(jp2c, (file.len() - jp2c + 1000) as u32),
        ),
        ("ihdr-length-past-jp2h", len_at(ihdr, jp2h_len as u32 + 100)),
        ("jp2h-xl-huge", jp2_box_xl(file, jp2h, u64::MAX)),
        ("jp2c-xl-huge", jp2_box_xl(file, jp2c, 1 << 62)),
        ("jp2h-xl-4", jp2_box_xl(file, jp2h, 4)),
        (
            "jp2c-xl-exact",
            jp2_box_xl(file, jp2c, (file.len() - jp2c + 8) as u64),
        ),
        ("jp2c-renamed", kind_at(jp2c, b"junk")),
        ("jp2c-removed", file[..jp2c].to_vec()),
        ("jp2h-renamed", kind_at(jp2h, b"junk")),
        ("ihdr-renamed", kind_at(ihdr, b"junk")),
        ("ihdr-removed", without(b"ihdr")),
        ("colr-removed", without(b"colr")),
        ("jp2h-empty", jp2_with_jp2h(file, |c| c.clear())),
        (
            "ihdr-65535x65535",
            patched(file, |b| {
                put_be32(b, ihdr_data, 65535);
                put_be32(b, ihdr_data + 4, 65535);
            }),
        ),
        (
            "ihdr-0x0",
            patched(file, |b| b[ihdr_data..ihdr_data + 8].fill(0)),
        ),
        (
            "ihdr-components-0",
            patched(file, |b| put_be16(b, ihdr_data + 8, 0)),
        ),
        (
            "ihdr-components-16384",
            patched(file, |b| put_be16(b, ihdr_data + 8, 16384)),
        ),
        ("ihdr-bpc-255", patched(file, |b| b[ihdr_data + 10] = 255)),
        (
            "colr-icc-bogus",
            jp2_with_jp2h(file, |c| {
                c.retain(|x| x[4..8] != b"colr"[..]);
                c.push(jp2_box_bytes(b"colr", &icc));
            }),
        ),
        (
            "pclr-bogus",
            with_children(vec![
                jp2_box_bytes(b"pclr", &pclr),
                jp2_box_bytes(b"cmap", &cmap),
            ]),
        ),
        (
            "cmap-without-pclr",
            with_children(vec![jp2_box_bytes(b"cmap", &cmap)]),
        ),
        ("res-length-huge", with_children(vec![res])),
        (
            "ftyp-brand-junk",
            patched(file, |b| b[ftyp + 8..ftyp + 12].copy_from_slice(b"junk")),
        ),
        ("signature-only", file[..12].to_vec()),
        ("jp2c-first", jp2c_first),
        (
            "two-jp2h",
            splice(file, jp2c, 0, &{
                let mut copy = file[jp2h..jp2h + jp2h_len].to_vec();
                let at = ihdr_data - jp2h;
                put_be32(&mut copy, at, 65535);
                put_be32(&mut copy, at + 4, 65535);
                copy
            }),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// GIF.

/// The size of a colour table whose flags are `packed` (0 without one).
fn gif_table(packed: u8) -> usize {
    match packed & 0x80 {
        0 => 0,
        _ => 3usize << ((packed & 7) + 1),
    }
}

/// The offset of a GIF's first image descriptor.
fn gif_descriptor(b: &[u8]) -> usize {
    let mut at = 13 + gif_table(b[10]);
    loop {
        match b[at] {
            0x2C => return at,
            0x21 => {
                at += 2;
                while b[at] != 0 {
                    at += 1 + usize::from(b[at]);
                }
                at += 1;
            }
            other => panic!("unexpected GIF block {other:#x} at {at}"),
        }
    }
}

/// A GIF whose screen and first frame say these sizes.
fn gif_with_size(b: &[u8], screen: (u16, u16), frame: (u16, u16)) -> Vec<u8> {
    let desc = gif_descriptor(b);
    patched(b, |b| {
        put_le16(b, 6, screen.0);
        put_le16(b, 8, screen.1);
        put_le16(b, desc + 5, frame.0);
        put_le16(b, desc + 7, frame.1);
    })
}

/// `data` as GIF sub-blocks with their terminator.
fn gif_subblocks(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in data.chunks(255) {
        out.push(c.len() as u8);
        out.extend_from_slice(c);
    }
    out.push(0);
    out
}

/// A GIF89a with a 256-gray global table and one frame (left, top, width, height) of `lzw`
/// data of `min_code` bits.
fn gif_file(screen: (u16, u16), frame: [u16; 4], min_code: u8, lzw: &[u8]) -> Vec<u8> {
    let mut b = b"GIF89a".to_vec();
    b.extend_from_slice(&screen.0.to_le_bytes());
    b.extend_from_slice(&screen.1.to_le_bytes());
    b.extend_from_slice(&[0xF7, 0, 0]);
    b.extend((0..=255u8).flat_map(|i| [i, i, i]));
    b.push(0x2C);
    for v in frame {
        b.extend_from_slice(&v.to_le_bytes());
    }
    b.extend_from_slice(&[0, min_code]);
    b.extend(gif_subblocks(lzw));
    b.push(0x3B);
    b
}

/// `count` sub-blocks of 255 zeros with no terminator.
fn endless_subblocks(count: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(count * 256);
    for _ in 0..count {
        out.push(255);
        out.extend_from_slice(&[0; 255]);
    }
    out
}

/// The GIF suite: the crate's encoder's GIF (300 x 200), a hand-made gray one, mutations and
/// specials.
fn gif_cases() -> Vec<Case> {
    const F: &str = "gif";
    let base = encode(&base_pixels(), Format::Gif);
    let tables = 13 + gif_table(base[10]);
    let desc = gif_descriptor(&base);
    let min_code = desc + 10 + gif_table(base[desc + 9]);
    let data = min_code + 1;
    let handmade = gif_file((64, 48), [0, 0, 64, 48], 8, &lzw_gif(&gradient(64, 48)));

    let mut cases = vec![
        Case::valid(F, "gif-base", base.clone(), BASE),
        Case::valid(F, "gif-handmade-gray", handmade, (64, 48)),
    ];
    cases.extend(mutations(
        F,
        "gif",
        &base,
        &[6, 10, 13, tables, desc, desc + 10, data],
        12,
    ));

    let byte_at = |at: usize, v: u8| patched(&base, |b| b[at] = v);
    let le16_at = |at: usize, v: u16| patched(&base, |b| put_le16(b, at, v));
    let mut rng = Rng::new(13);
    let garbage_lzw = {
        let mut b = base[..data].to_vec();
        b.extend(gif_subblocks(&rng.bytes(8192)));
        b.push(0x3B);
        b
    };
    let endless_frame = [&base[..data], endless_subblocks(4000).as_slice()].concat();
    let endless_extension = {
        let mut b = base[..tables].to_vec();
        b.extend_from_slice(&[0x21, 0xFE]);
        b.extend(endless_subblocks(4000));
        b
    };
    cases.extend(named(
        F,
        "gif",
        vec![
            (
                "screen-65535x65535",
                gif_with_size(&base, (65535, 65535), (300, 200)),
            ),
            (
                "frame-65535x65535",
                gif_with_size(&base, (300, 200), (65535, 65535)),
            ),
            (
                "both-65535x65535",
                gif_with_size(&base, (65535, 65535), (65535, 65535)),
            ),
            ("screen-0x0", gif_with_size(&base, (0, 0), (300, 200))),
            ("frame-0x0", gif_with_size(&base, (300, 200), (0, 0))),
            (
                "frame-wider-than-data",
                gif_with_size(&base, (300, 200), (600, 200)),
            ),
            (
                "frame-off-screen",
                patched(&base, |b| {
                    put_le16(b, desc + 1, 65000);
                    put_le16(b, desc + 3, 65000);
                }),
            ),
            ("frame-at-65535", le16_at(desc + 1, 65535)),
            ("lzw-min-code-0", byte_at(min_code, 0)),
            ("lzw-min-code-1", byte_at(min_code, 1)),
            ("lzw-min-code-12", byte_at(min_code, 12)),
            ("lzw-min-code-255", byte_at(min_code, 255)),
            ("global-table-flag-cleared", byte_at(10, base[10] & 0x7F)),
            ("global-table-size-7-flag", byte_at(10, base[10] | 0x87)),
            (
                "local-table-flag-set",
                byte_at(desc + 9, base[desc + 9] | 0x87),
            ),
            ("lzw-garbage", garbage_lzw),
            (
                "lzw-bomb",
                gif_file((64, 64), [0, 0, 64, 64], 8, &lzw_gif(&vec![0; 32 << 20])),
            ),
            (
                "lzw-bomb-65535",
                gif_file(
                    (65535, 65535),
                    [0, 0, 65535, 65535],
                    8,
                    &lzw_gif(&vec![0; 1 << 20]),
                ),
            ),
            ("endless-frame-data", endless_frame),
            ("endless-extension", endless_extension),
            ("no-image", [&base[..tables], &[0x3Bu8][..]].concat()),
            ("header-only", base[..13].to_vec()),
        ],
    ));
    cases
}

// ---------------------------------------------------------------------------------------------
// WebP.

/// The chunks of a WebP after its RIFF header: (offset, type, data length).
fn riff_chunks(b: &[u8]) -> Vec<(usize, [u8; 4], usize)> {
    let mut out = Vec::new();
    let mut at = 12;
    while at + 8 <= b.len() {
        let kind = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        let len = le32(b, at + 4);
        out.push((at, kind, len));
        at += 8 + len + (len & 1);
    }
    out
}

/// The chunk of `kind`: (offset, data length).
fn riff_chunk_at(b: &[u8], kind: &[u8; 4]) -> (usize, usize) {
    riff_chunks(b)
        .into_iter()
        .find(|c| &c.1 == kind)
        .map(|c| (c.0, c.2))
        .expect("the fixture has the chunk")
}

/// One RIFF chunk, padded to an even length.
fn riff_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = kind.to_vec();
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
    out
}

/// A WebP file of `chunks`.
fn riff_file(chunks: &[Vec<u8>]) -> Vec<u8> {
    let body = chunks.concat();
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&((4 + body.len()) as u32).to_le_bytes());
    out.extend_from_slice(b"WEBP");
    out.extend(body);
    out
}

/// `v` as three little-endian bytes.
fn le24(v: u32) -> [u8; 3] {
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

/// A VP8X chunk: `flags`, a `w` x `h` canvas (at least 1, at most 2^24 a side).
fn vp8x_chunk(flags: u8, w: u32, h: u32) -> Vec<u8> {
    let mut d: Vec<u8> = vec![flags, 0, 0, 0];
    d.extend_from_slice(&le24(w - 1));
    d.extend_from_slice(&le24(h - 1));
    riff_chunk(b"VP8X", &d)
}

/// An ANMF chunk: a `w` x `h` frame at `x`, `y` holding `frame` (whole chunks).
fn anmf_chunk(x: u32, y: u32, w: u32, h: u32, frame: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    for v in [x / 2, y / 2, w - 1, h - 1, 100] {
        d.extend_from_slice(&le24(v));
    }
    d.push(0);
    d.extend_from_slice(frame);
    riff_chunk(b"ANMF", &d)
}

/// A lossy VP8 chunk of a `w` x `h` key frame whose first partition says `partition` bytes,
/// followed by random bytes.
fn vp8_chunk(w: u16, h: u16, partition: u32, rng: &mut Rng) -> Vec<u8> {
    let tag = (1u32 << 4) | (partition << 5);
    let mut d = le24(tag).to_vec();
    d.extend_from_slice(&[0x9D, 0x01, 0x2A]);
    d.extend_from_slice(&w.to_le_bytes());
    d.extend_from_slice(&h.to_le_bytes());
    d.extend(rng.bytes(1500));
    riff_chunk(b"VP8 ", &d)
}

/// A lossless WebP whose VP8L header says `w` x `h` (1 to 16384).
fn webp_with_size(b: &[u8], w: u32, h: u32) -> Vec<u8> {
    let (pos, _) = riff_chunk_at(b, b"VP8L");
    let at = pos + 9;
    patched(b, |b| {
        let bits = le32(b, at) as u32;
        let bits = (bits & !((1 << 28) - 1)) | (w - 1) | ((h - 1) << 14);
        put_le32(b, at, bits);
    })
}

/// The WebP suite: the crate's encoder's lossless WebP (300 x 200), mutations and specials.
fn webp_cases() -> Vec<Case> {
    const F: &str = "webp";
    let base = encode(&base_pixels(), Format::Webp);
    let (vp8l, vp8l_len) = riff_chunk_at(&base, b"VP8L");
    let frame = base[vp8l..(vp8l + 8 + vp8l_len + (vp8l_len & 1)).min(base.len())].to_vec();

    let mut cases = vec![Case::valid(F, "webp-base", base.clone(), BASE)];
    cases.extend(mutations(
        F,
        "webp",
        &base,
        &[4, 8, 12, 16, vp8l + 8, vp8l + 13],
        14,
    ));

    let le32_at = |at: usize, v: u32| patched(&base, |b| put_le32(b, at, v));
    let mut rng = Rng::new(15);
    let lossy = |w: u16, h: u16, partition: u32, rng: &mut Rng| {
        riff_file(&[vp8_chunk(w, h, partition, rng)])
    };
    cases.extend(named(
        F,
        "webp",
        vec![
            ("vp8l-16384x16384", webp_with_size(&base, 16384, 16384)),
            ("vp8l-1x16384", webp_with_size(&base, 1, 16384)),
            ("vp8l-version-7", patched(&base, |b| b[vp8l + 12] |= 0xE0)),
            ("vp8l-signature-0", patched(&base, |b| b[vp8l + 8] = 0)),
            ("riff-size-0", le32_at(4, 0)),
            ("riff-size-4", le32_at(4, 4)),
            ("riff-size-huge", le32_at(4, 0xFFFF_FFF0)),
            ("chunk-size-0", le32_at(vp8l + 4, 0)),
            ("chunk-size-huge", le32_at(vp8l + 4, 0xFFFF_FFF0)),
            (
                "chunk-size-past-end",
                le32_at(vp8l + 4, vp8l_len as u32 + 1001),
            ),
            (
                "vp8x-canvas-16777216",
                riff_file(&[vp8x_chunk(0, 1 << 24, 1 << 24), frame.clone()]),
            ),
            (
                "vp8x-canvas-65535",
                riff_file(&[vp8x_chunk(0, 65535, 65535), frame.clone()]),
            ),
            (
                "vp8x-canvas-1x1",
                riff_file(&[vp8x_chunk(0, 1, 1), frame.clone()]),
            ),
            (
                "vp8x-animated-without-frames",
                riff_file(&[vp8x_chunk(0x02, 300, 200), frame.clone()]),
            ),
            (
                "vp8x-alpha-without-alph",
                riff_file(&[vp8x_chunk(0x10, 300, 200), frame.clone()]),
            ),
            ("vp8x-only", riff_file(&[vp8x_chunk(0, 300, 200)])),
            (
                "anmf-frame-bomb",
                riff_file(&[
                    vp8x_chunk(0x02, 300, 200),
                    riff_chunk(b"ANIM", &[0; 6]),
                    anmf_chunk(0, 0, 1 << 24, 1 << 24, &frame),
                ]),
            ),
            (
                "anmf-offset-bomb",
                riff_file(&[
                    vp8x_chunk(0x02, 300, 200),
                    riff_chunk(b"ANIM", &[0; 6]),
                    anmf_chunk(0x1FF_FFFE, 0x1FF_FFFE, 300, 200, &frame),
                ]),
            ),
            (
                "anmf-canvas-bomb",
                riff_file(&[
                    vp8x_chunk(0x02, 1 << 24, 1 << 24),
                    riff_chunk(b"ANIM", &[0; 6]),
                    anmf_chunk(0, 0, 300, 200, &frame),
                ]),
            ),
            ("vp8-garbage", lossy(300, 200, 600, &mut rng)),
            ("vp8-16383x16383", lossy(16383, 16383, 600, &mut rng)),
            ("vp8-0x0", lossy(0, 0, 600, &mut rng)),
            ("vp8-partition-huge", lossy(300, 200, 0x7FFFF, &mut rng)),
            (
                "alph-garbage",
                riff_file(&[
                    vp8x_chunk(0x10, 300, 200),
                    riff_chunk(b"ALPH", &[&[1u8][..], rng.bytes(512).as_slice()].concat()),
                    vp8_chunk(300, 200, 600, &mut rng),
                ]),
            ),
            (
                "alph-garbage-lossless",
                riff_file(&[
                    vp8x_chunk(0x10, 300, 200),
                    riff_chunk(b"ALPH", &[&[1u8][..], rng.bytes(512).as_slice()].concat()),
                    frame.clone(),
                ]),
            ),
        ],
    ));
    cases
}

// ---------------------------------------------------------------------------------------------
// BMP.

/// A BMP with a 40-byte info header: `bits` a pixel, `compression`, `palette` (BGRA entries)
/// of which `colors` are said to be used, and `data` right after the palette.
fn bmp_file(
    width: i32,
    height: i32,
    bits: u16,
    compression: u32,
    palette: &[u8],
    colors: u32,
    data: &[u8],
) -> Vec<u8> {
    let offset = 54 + palette.len() as u32;
    let mut b = b"BM".to_vec();
    b.extend_from_slice(&(offset + data.len() as u32).to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&offset.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&width.to_le_bytes());
    b.extend_from_slice(&height.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b.extend_from_slice(&compression.to_le_bytes());
    b.extend_from_slice(&(data.len() as u32).to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&colors.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(palette);
    b.extend_from_slice(data);
    b
}

/// The rows of `px` as 24-bit BMP data: B, G, R, rows padded to 4 bytes, bottom-up unless
/// `top_down`.
fn bmp_rows24(px: &Pixels, top_down: bool) -> Vec<u8> {
    let (w, h) = (px.width() as usize, px.height() as usize);
    let stride = (w * 3).div_ceil(4) * 4;
    let mut out = Vec::with_capacity(stride * h);
    for k in 0..h {
        let y = if top_down { k } else { h - 1 - k };
        let start = out.len();
        for p in px.data()[y * w * 3..][..w * 3].chunks_exact(3) {
            out.extend_from_slice(&[p[2], p[1], p[0]]);
        }
        out.resize(start + stride, 0);
    }
    out
}

/// A BMP whose header says `width` x `height`.
fn bmp_with_size(b: &[u8], width: i32, height: i32) -> Vec<u8> {
    patched(b, |b| {
        b[18..22].copy_from_slice(&width.to_le_bytes());
        b[22..26].copy_from_slice(&height.to_le_bytes());
    })
}

/// The BMP suite: a 24-bit 250 x 150 (rows padded), its top-down twin, an 8-bit paletted one,
/// mutations and specials.
fn bmp_cases() -> Vec<Case> {
    const F: &str = "bmp";
    let px = crate::samples::pattern(250, 150);
    let base = bmp_file(250, 150, 24, 0, &[], 0, &bmp_rows24(&px, false));
    let top_down = bmp_file(250, -150, 24, 0, &[], 0, &bmp_rows24(&px, true));
    let gray: Vec<u8> = (0..=255u8).flat_map(|i| [i, i, i, 0]).collect();
    let paletted = bmp_file(64, 48, 8, 0, &gray, 256, &gradient(64, 48));

    let mut cases = vec![
        Case::valid(F, "bmp-base", base.clone(), (250, 150)),
        Case::valid(F, "bmp-top-down", top_down, (250, 150)),
        Case::valid(F, "bmp-paletted", paletted.clone(), (64, 48)),
    ];
    cases.extend(mutations(
        F,
        "bmp",
        &base,
        &[2, 6, 10, 14, 18, 26, 30, 54],
        16,
    ));

    let u16_at = |at: usize, v: u16| patched(&base, |b| put_le16(b, at, v));
    let u32_at = |at: usize, v: u32| patched(&base, |b| put_le32(b, at, v));
    let rle8 = |w: i32, h: i32, data: &[u8]| bmp_file(w, h, 8, 1, &gray, 256, data);
    let mut overrun: Vec<u8> = vec![0, 255];
    overrun.extend_from_slice(&[7; 255]);
    overrun.extend_from_slice(&[0, 0, 1]);
    let runs: Vec<u8> = [255u8, 7].repeat(1000).into_iter().chain([0, 1]).collect();
    cases.extend(named(
        F,
        "bmp",
        vec![
            ("65535x65535", bmp_with_size(&base, 65535, 65535)),
            ("2147483647x1", bmp_with_size(&base, i32::MAX, 1)),
            ("1x2147483647", bmp_with_size(&base, 1, i32::MAX)),
            ("height-minus-65535", bmp_with_size(&base, 250, -65535)),
            ("height-min", bmp_with_size(&base, 250, i32::MIN)),
            ("width-negative", bmp_with_size(&base, -250, 150)),
            ("width-min", bmp_with_size(&base, i32::MIN, 150)),
            ("width-0", bmp_with_size(&base, 0, 150)),
            ("height-0", bmp_with_size(&base, 250, 0)),
            ("bpp-0", u16_at(28, 0)),
            ("bpp-1-without-palette", u16_at(28, 1)),
            ("bpp-33", u16_at(28, 33)),
            ("bpp-64", u16_at(28, 64)),
            ("planes-0", u16_at(26, 0)),
            ("rle8-on-24-bit", u32_at(30, 1)),
            ("rle4-on-24-bit", u32_at(30, 2)),
            ("bitfields-without-masks", u32_at(30, 3)),
            ("embedded-jpeg", u32_at(30, 4)),
            ("embedded-png", u32_at(30, 5)),
            ("compression-max", u32_at(30, u32::MAX)),
            ("data-offset-past-end", u32_at(10, base.len() as u32 + 100)),
            ("data-offset-0", u32_at(10, 0)),
            ("data-offset-max", u32_at(10, u32::MAX)),
            ("header-size-12", u32_at(14, 12)),
            ("header-size-124", u32_at(14, 124)),
            ("header-size-124-short", u32_at(14, 124)[..100].to_vec()),
            ("image-size-max", u32_at(34, u32::MAX)),
            (
                "colors-used-max",
                patched(&paletted, |b| put_le32(b, 46, u32::MAX)),
            ),
            (
                "colors-used-4-index-255",
                bmp_file(64, 48, 8, 0, &gray[..16], 4, &[255; 64 * 48]),
            ),
            ("rle8-65535x65535", rle8(65535, 65535, &[0, 1])),
            ("rle8-sparse-4000", rle8(4000, 4000, &[0, 1])),
            (
                "rle8-delta-past-end",
                rle8(64, 64, &[0, 2, 255, 255, 5, 7, 0, 1]),
            ),
            ("rle8-absolute-overrun", rle8(64, 64, &overrun)),
            ("rle8-runs-past-the-image", rle8(64, 64, &runs)),
            ("rle8-top-down", rle8(64, -64, &[4, 7, 0, 1])),
            (
                "rle4-65535x65535",
                bmp_file(65535, 65535, 4, 2, &gray[..64], 16, &[0, 1]),
            ),
        ],
    ));
    cases
}

// ---------------------------------------------------------------------------------------------
// ICC profiles.

/// `v` as an ICC s15Fixed16Number.
fn s15f16(v: f64) -> [u8; 4] {
    ((v * 65536.0).round() as i32).to_be_bytes()
}

/// An ICC `XYZ ` tag.
fn icc_xyz(x: f64, y: f64, z: f64) -> Vec<u8> {
    let mut t = b"XYZ \0\0\0\0".to_vec();
    for v in [x, y, z] {
        t.extend_from_slice(&s15f16(v));
    }
    t
}

/// An ICC `curv` tag that says it has `count` entries and holds `entries`.
fn icc_curve(count: u32, entries: &[u16]) -> Vec<u8> {
    let mut t = b"curv\0\0\0\0".to_vec();
    t.extend_from_slice(&count.to_be_bytes());
    for e in entries {
        t.extend_from_slice(&e.to_be_bytes());
    }
    t
}

/// An ICC `mft2` (lut16) tag header: `inputs` and `outputs` channels, a CLUT of `grid` points a
/// side, tables of 4096 entries; none of the tables or the CLUT follow.
fn icc_lut16(inputs: u8, outputs: u8, grid: u8) -> Vec<u8> {
    let mut t = b"mft2\0\0\0\0".to_vec();
    t.extend_from_slice(&[inputs, outputs, grid, 0]);
    for k in 0..9 {
        t.extend_from_slice(&s15f16(if k % 4 == 0 { 1.0 } else { 0.0 }));
    }
    t.extend_from_slice(&4096u16.to_be_bytes());
    t.extend_from_slice(&4096u16.to_be_bytes());
    t
}

/// The tags of a matrix/TRC RGB profile (Adobe RGB-like primaries adapted to D50, gamma 2.2),
/// or with `curve` as the three TRCs.
fn icc_matrix_tags(curve: Vec<u8>) -> Vec<([u8; 4], Vec<u8>)> {
    vec![
        (*b"wtpt", icc_xyz(0.9642, 1.0, 0.8249)),
        (*b"rXYZ", icc_xyz(0.6097, 0.3111, 0.0195)),
        (*b"gXYZ", icc_xyz(0.2053, 0.6257, 0.0609)),
        (*b"bXYZ", icc_xyz(0.1492, 0.0632, 0.7446)),
        (*b"rTRC", curve.clone()),
        (*b"gTRC", curve.clone()),
        (*b"bTRC", curve),
    ]
}

/// An ICC profile (version 4.3, display class, RGB data, XYZ connection space) of `tags`; its
/// header's size and tag count are the true ones unless given.
fn icc_profile(tags: &[([u8; 4], Vec<u8>)], size: Option<u32>, count: Option<u32>) -> Vec<u8> {
    let start = 128 + 4 + 12 * tags.len();
    let (mut table, mut data) = (Vec::new(), Vec::new());
    for (signature, body) in tags {
        table.extend_from_slice(signature);
        table.extend_from_slice(&((start + data.len()) as u32).to_be_bytes());
        table.extend_from_slice(&(body.len() as u32).to_be_bytes());
        data.extend_from_slice(body);
        data.resize(data.len().div_ceil(4) * 4, 0);
    }
    let mut p = vec![0u8; 128];
    put_be32(&mut p, 0, size.unwrap_or((start + data.len()) as u32));
    p[8..10].copy_from_slice(&[4, 0x30]);
    p[12..16].copy_from_slice(b"mntr");
    p[16..20].copy_from_slice(b"RGB ");
    p[20..24].copy_from_slice(b"XYZ ");
    p[36..40].copy_from_slice(b"acsp");
    for (k, v) in [0.9642, 1.0, 0.8249].into_iter().enumerate() {
        p[68 + 4 * k..72 + 4 * k].copy_from_slice(&s15f16(v));
    }
    p.extend_from_slice(&count.unwrap_or(tags.len() as u32).to_be_bytes());
    p.extend(table);
    p.extend(data);
    p
}

/// A profile whose tag table entries have their offset (`field` 4) or size (`field` 8) set to
/// `value`.
fn icc_with_table(profile: &[u8], tags: usize, field: usize, value: u32) -> Vec<u8> {
    patched(profile, |p| {
        for k in 0..tags {
            put_be32(p, 132 + 12 * k + field, value);
        }
    })
}

/// Hostile profiles, and one plausible one (`plausible`, whose images must render): (name,
/// bytes).
fn hostile_profiles() -> Vec<(&'static str, Vec<u8>)> {
    let gamma = icc_curve(1, &[0x0233]);
    let plausible = icc_profile(&icc_matrix_tags(gamma.clone()), None, None);
    let n = icc_matrix_tags(Vec::new()).len();
    let mut lut = icc_matrix_tags(gamma.clone());
    lut.push((*b"A2B0", icc_lut16(3, 3, 255)));
    let mut overflow = icc_matrix_tags(gamma);
    overflow.push((*b"A2B0", icc_lut16(15, 15, 255)));
    let mut garbage = Rng::new(17).bytes(2000);
    garbage[36..40].copy_from_slice(b"acsp");
    vec![
        ("plausible", plausible.clone()),
        ("size-max", icc_profile(&[], Some(u32::MAX), None)),
        ("size-0", icc_profile(&[], Some(0), None)),
        ("tag-count-max", icc_profile(&[], None, Some(u32::MAX))),
        (
            "tags-past-end",
            icc_with_table(&plausible, n, 4, 0xFFFF_FF00),
        ),
        ("tag-sizes-max", icc_with_table(&plausible, n, 8, u32::MAX)),
        ("tags-in-header", icc_with_table(&plausible, n, 4, 0)),
        (
            "curves-count-max",
            icc_profile(&icc_matrix_tags(icc_curve(u32::MAX, &[])), None, None),
        ),
        (
            "curves-parametric-99",
            icc_profile(
                &icc_matrix_tags(b"para\0\0\0\0\0\x63\0\0".to_vec()),
                None,
                None,
            ),
        ),
        ("lut16-grid-255", icc_profile(&lut, None, None)),
        ("lut16-15-channels", icc_profile(&overflow, None, None)),
        ("garbage", garbage),
    ]
}

/// APP2 `ICC_PROFILE` segments of `chunks` (sequence numbers `seq`, of `total`), inserted after
/// the SOI of `jpeg`.
fn jpeg_with_icc(jpeg: &[u8], chunks: &[(u8, &[u8])], total: u8) -> Vec<u8> {
    let mut segments = Vec::new();
    for &(seq, chunk) in chunks {
        segments.extend_from_slice(&[0xFF, 0xE2]);
        segments.extend_from_slice(&((2 + 12 + 2 + chunk.len()) as u16).to_be_bytes());
        segments.extend_from_slice(b"ICC_PROFILE\0");
        segments.extend_from_slice(&[seq, total]);
        segments.extend_from_slice(chunk);
    }
    splice(jpeg, 2, 0, &segments)
}

/// A PNG with an `iCCP` chunk of `profile` right after IHDR.
fn png_with_icc(png: &[u8], profile: &[u8]) -> Vec<u8> {
    let data = [b"icc\0\0".as_slice(), zlib(profile).as_slice()].concat();
    splice(png, 33, 0, &png_chunk(b"iCCP", &data))
}

/// A TIFF whose first image has an `ICCProfile` tag of `profile` (appended to the file), or of
/// `count` bytes when given.
fn tiff_with_icc(tiff: &[u8], profile: &[u8], count: Option<u32>) -> Vec<u8> {
    let mut out = tiff.to_vec();
    if out.len() % 2 == 1 {
        out.push(0);
    }
    let at = out.len() as u32;
    out.extend_from_slice(profile);
    let count = count.unwrap_or(profile.len() as u32);
    tiff_with_entries(&out, 0, |_| vec![tiff_entry_bytes(34675, 7, count, at)])
}

/// A JP2 whose `colr` box holds `profile` (method 2, restricted ICC).
fn jp2_with_icc(jp2: &[u8], profile: &[u8]) -> Vec<u8> {
    let colr = jp2_box_bytes(b"colr", &[&[2u8, 0, 0][..], profile].concat());
    jp2_with_jp2h(jp2, |c| {
        c.retain(|x| x[4..8] != b"colr"[..]);
        c.push(colr);
    })
}

/// An extended WebP of `frame` (a whole VP8L chunk) with an `ICCP` chunk of `profile`.
fn webp_with_icc(frame: &[u8], profile: &[u8]) -> Vec<u8> {
    riff_file(&[
        vp8x_chunk(0x20, BASE.0, BASE.1),
        riff_chunk(b"ICCP", profile),
        frame.to_vec(),
    ])
}

/// The ICC suite: every hostile profile in every container, and JPEG chunking tricks.
fn icc_cases() -> Vec<Case> {
    let jpeg = encode(&base_pixels(), Format::Jpg);
    let png = encode(&base_pixels(), Format::Png);
    let tiff = encode(&base_pixels(), Format::Tif);
    let (pyramid, _) = crate::tiff::tests::deflate_rgb_pyramid();
    let jp2 = jp2_fixture(true, false);
    let webp = encode(&base_pixels(), Format::Webp);
    let (vp8l, vp8l_len) = riff_chunk_at(&webp, b"VP8L");
    let frame = &webp[vp8l..(vp8l + 8 + vp8l_len + (vp8l_len & 1)).min(webp.len())];
    let mut cases = Vec::new();
    for (name, profile) in hostile_profiles() {
        let p = profile.as_slice();
        // A valid image with a well-formed profile must render, converted or not.
        let mut add = |format: &'static str, bytes: Vec<u8>| {
            let id = format!("{format}-{name}");
            cases.push(match name {
                "plausible" => Case::valid(format, id, bytes, BASE),
                _ => Case::hostile(format, id, bytes),
            });
        };
        add("icc-jpeg", jpeg_with_icc(&jpeg, &[(1u8, p)], 1));
        add("icc-png", png_with_icc(&png, p));
        add("icc-tiff-strip", tiff_with_icc(&tiff, p, None));
        add("icc-tiff-tiled", tiff_with_icc(&pyramid, p, None));
        add("icc-jp2", jp2_with_icc(&jp2, p));
        add("icc-webp", webp_with_icc(frame, p));
    }
    let plausible = icc_profile(&icc_matrix_tags(icc_curve(1, &[0x0233])), None, None);
    let (a, rest) = plausible.split_at(100);
    let (b, c) = rest.split_at(100);
    let empty: &[u8] = &[];
    let big = vec![0x41u8; 65_000];
    let many: Vec<(u8, &[u8])> = (1..=80).map(|k| (k, big.as_slice())).collect();
    cases.extend(named(
        "icc-jpeg",
        "icc-jpeg",
        vec![
            (
                "chunks-out-of-order",
                jpeg_with_icc(&jpeg, &[(3u8, c), (1, a), (2, b)], 3),
            ),
            (
                "chunks-duplicated",
                jpeg_with_icc(&jpeg, &[(1u8, a), (1, a), (2, rest)], 2),
            ),
            (
                "chunks-missing",
                jpeg_with_icc(&jpeg, &[(1u8, a), (3, c)], 3),
            ),
            ("chunk-empty", jpeg_with_icc(&jpeg, &[(1u8, empty)], 1)),
            ("chunks-past-4-mib", jpeg_with_icc(&jpeg, &many, 80)),
            ("chunk-header-only", {
                let seg = [&[0xFFu8, 0xE2, 0, 14][..], b"ICC_PROFILE\0".as_slice()].concat();
                splice(&jpeg, 2, 0, &seg)
            }),
        ],
    ));
    cases.extend(named(
        "icc-tiff-strip",
        "icc-tiff-strip",
        vec![
            (
                "count-huge",
                tiff_with_icc(&tiff, &plausible, Some(0x7FFF_FFFF)),
            ),
            (
                "count-past-end",
                tiff_with_icc(&tiff, &plausible, Some(plausible.len() as u32 + 100)),
            ),
        ],
    ));
    cases.extend(named(
        "icc-tiff-tiled",
        "icc-tiff-tiled",
        vec![
            (
                "count-huge",
                tiff_with_icc(&pyramid, &plausible, Some(0x7FFF_FFFF)),
            ),
            (
                "count-past-end",
                tiff_with_icc(&pyramid, &plausible, Some(plausible.len() as u32 + 100)),
            ),
        ],
    ));
    cases
}

// ---------------------------------------------------------------------------------------------
// Random bytes.

/// Every format's magic bytes: (name, extension, bytes).
fn magics() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let mut bmp = b"BM".to_vec();
    bmp.extend_from_slice(&[0; 12]);
    bmp.extend_from_slice(&40u32.to_le_bytes());
    let mut bmp5 = b"BM".to_vec();
    bmp5.extend_from_slice(&[0; 12]);
    bmp5.extend_from_slice(&124u32.to_le_bytes());
    let riff = |tail: &[u8]| [b"RIFF\x00\x00\x10\x00WEBP".as_slice(), tail].concat();
    vec![
        ("jpeg", "jpg", vec![0xFF, 0xD8, 0xFF]),
        ("png", "png", PNG_SIGNATURE.to_vec()),
        ("tiff-le", "tif", b"II*\0".to_vec()),
        ("tiff-be", "tif", b"MM\0*".to_vec()),
        ("bigtiff-le", "tif", b"II+\0".to_vec()),
        ("bigtiff-be", "tif", b"MM\0+".to_vec()),
        ("jp2", "jp2", JP2_SIGNATURE.to_vec()),
        ("j2k", "j2k", vec![0xFF, 0x4F, 0xFF, 0x51]),
        ("gif87a", "gif", b"GIF87a".to_vec()),
        ("gif89a", "gif", b"GIF89a".to_vec()),
        ("webp", "webp", riff(b"")),
        ("webp-vp8l", "webp", riff(b"VP8L")),
        ("webp-vp8", "webp", riff(b"VP8 ")),
        ("webp-vp8x", "webp", riff(b"VP8X")),
        ("bmp", "bmp", bmp),
        ("bmp-v5", "bmp", bmp5),
    ]
}

/// The random suite: empty files, single bytes, text and random bytes behind every extension;
/// every format's magic bytes alone and followed by random bytes.
fn random_cases() -> Vec<Case> {
    const F: &str = "random";
    let mut rng = Rng::new(0xD1CE);
    let mut cases = Vec::new();
    for ext in ["jpg", "png", "tif", "jp2", "gif", "webp", "bmp"] {
        cases.push(Case::hostile(F, format!("empty.{ext}"), Vec::new()));
        cases.push(Case::hostile(F, format!("one-byte.{ext}"), vec![0xFF]));
        cases.push(Case::hostile(
            F,
            format!("text.{ext}"),
            b"hello, this is not an image\n".to_vec(),
        ));
        cases.push(Case::hostile(
            F,
            format!("random-small.{ext}"),
            rng.bytes(100),
        ));
        cases.push(Case::hostile(
            F,
            format!("random-large.{ext}"),
            rng.bytes(200_003),
        ));
    }
    for (name, ext, magic) in magics() {
        let small = [magic.as_slice(), rng.bytes(4096).as_slice()].concat();
        let large = [magic.as_slice(), rng.bytes(300_001).as_slice()].concat();
        cases.push(Case::hostile(F, format!("magic-only-{name}.{ext}"), magic));
        cases.push(Case::hostile(
            F,
            format!("magic-random-{name}.{ext}"),
            small,
        ));
        cases.push(Case::hostile(
            F,
            format!("magic-random-large-{name}.{ext}"),
            large,
        ));
    }
    cases
}

// ---------------------------------------------------------------------------------------------
// Bombs for the memory ceiling.

/// A 16000 x 16000 dimension bomb of every format, each with a valid header.
fn ceiling_bombs() -> Vec<(String, Vec<u8>)> {
    const SIDE: u32 = 16_000;
    let side16 = SIDE as u16;
    let jpeg = encode(&base_pixels(), Format::Jpg);
    let gif = encode(&base_pixels(), Format::Gif);
    let webp = encode(&base_pixels(), Format::Webp);
    let px = crate::samples::pattern(250, 150);
    let bmp = bmp_file(250, 150, 24, 0, &[], 0, &bmp_rows24(&px, false));
    let (pyramid, _) = crate::tiff::tests::deflate_rgb_pyramid();
    vec![
        ("bomb-jpeg", jpeg_with_size(&jpeg, side16, side16)),
        (
            "bomb-png",
            png_file(
                png_ihdr(SIDE, SIDE, 8, 2, 0),
                &[png_chunk(b"IDAT", &zlib_zeros(1 << 20))],
            ),
        ),
        (
            "bomb-tiff-strip",
            strip_tiff(SIDE, SIDE, 3, 8, 2, &zlib_zeros(1 << 20)),
        ),
        ("bomb-tiff-tiled", tiff_with_size(&pyramid, 0, SIDE, SIDE)),
        ("bomb-bmp", bmp_with_size(&bmp, SIDE as i32, SIDE as i32)),
        (
            "bomb-gif",
            gif_with_size(&gif, (side16, side16), (side16, side16)),
        ),
        ("bomb-webp", webp_with_size(&webp, SIDE, SIDE)),
        (
            "bomb-j2k",
            j2k_with_size(&jp2_fixture(false, false), SIDE, SIDE, Some((SIDE, SIDE))),
        ),
        (
            "bomb-jp2-tiled",
            j2k_with_size(&jp2_fixture(true, true), SIDE, SIDE, None),
        ),
    ]
    .into_iter()
    .map(|(id, bytes)| (id.to_owned(), bytes))
    .collect()
}
