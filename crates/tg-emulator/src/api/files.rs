//! Files: `getFile` and downloads under `/file/`, the file references a
//! send may carry (`attach://`, a URL, a `file_id`), and the checks and
//! storage of uploaded photos, documents and videos.

use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, Method as HttpMethod, header},
    response::Response,
};
use serde_json::json;

use crate::{
    error::{ApiError, ApiOk, ApiResult},
    media,
    model::FileInfo,
    params::{Params, percent_decode},
    state::{FileKind, Shared, StoredFile},
};

const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;

/// Bots may upload other files (documents, videos) up to 50 MB.
const MAX_DOCUMENT_BYTES: usize = 50 * 1024 * 1024;

/// Bots may download files up to 20 MB through getFile, whatever their kind
/// (a user's 21 MB video is stored and announced, but getFile refuses it).
const MAX_GETFILE_BYTES: u64 = 20 * 1024 * 1024;

/// `GET /file/bot<token>/<file_path>`.
pub(super) fn download(
    shared: &Shared,
    rest: &str,
    method: &HttpMethod,
) -> Result<Response, ApiError> {
    let (token, path) = rest.split_once('/').unwrap_or((rest, ""));
    let token = percent_decode(token);
    if token.strip_prefix("bot") != Some(shared.config.token.as_str()) {
        return Err(ApiError::unauthorized());
    }
    let path = percent_decode(path);
    let state = shared.lock();
    let file = state.file_by_path(&path).ok_or_else(ApiError::not_found)?;
    Ok(file_response(file, method == HttpMethod::HEAD))
}

/// Raw bytes of a stored file with its content type.
pub(crate) fn file_response(file: &StoredFile, head_only: bool) -> Response {
    let mime = file
        .info
        .mime_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let body = if head_only {
        Body::empty()
    } else {
        Body::from(file.bytes.clone())
    };
    let mut response = Response::new(body);
    if let Ok(value) = HeaderValue::from_str(&mime) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response.headers_mut().insert(
        header::CONTENT_LENGTH,
        HeaderValue::from(file.bytes.len() as u64),
    );
    response
}

pub(super) fn get_file(shared: &Shared, params: &Params) -> ApiResult {
    let file_id = params
        .non_empty_str("file_id")
        .ok_or_else(|| ApiError::bad_request("file_id is empty"))?;
    let state = shared.lock();
    let file = state
        .file(&file_id)
        .ok_or_else(|| ApiError::bad_request("invalid file_id"))?;
    if file.info.file_size > MAX_GETFILE_BYTES {
        return Err(ApiError::bad_request("file is too big"));
    }
    Ok(ApiOk::new(json!({
        "file_id": file.info.file_id,
        "file_unique_id": file.info.file_unique_id,
        "file_size": file.info.file_size,
        "file_path": file.info.file_path,
    })))
}

/// The bytes behind a `photo`/`document` parameter or an InputMedia's `media`.
pub(super) enum Input {
    Bytes {
        bytes: Bytes,
        file_name: Option<String>,
        content_type: Option<String>,
    },
    /// A `file_id` the emulator already knows: Telegram re-sends the same file.
    Existing(StoredFile),
}

impl Input {
    fn upload(u: &crate::params::Upload) -> Self {
        Self::Bytes {
            bytes: u.bytes.clone(),
            file_name: u.file_name.clone(),
            content_type: u.content_type.clone(),
        }
    }
}

pub(super) async fn resolve_input(
    shared: &Shared,
    params: &Params,
    field: &str,
) -> Result<Input, ApiError> {
    if let Some(upload) = params.file(field) {
        return Ok(Input::upload(upload));
    }
    let value = params
        .non_empty_str(field)
        .ok_or_else(|| ApiError::bad_request(format!("there is no {field} in the request")))?;
    resolve_value(shared, params, &value).await
}

/// A file reference: `attach://<multipart field>`, an HTTP URL to fetch, or
/// a known `file_id`.
pub(super) async fn resolve_value(
    shared: &Shared,
    params: &Params,
    value: &str,
) -> Result<Input, ApiError> {
    let wrong = || ApiError::bad_request("wrong file identifier/HTTP URL specified");
    if let Some(name) = value.strip_prefix("attach://") {
        return params.file(name).map(Input::upload).ok_or_else(wrong);
    }
    if value.starts_with("http://") || value.starts_with("https://") {
        let fetch_failed = || ApiError::bad_request("failed to get HTTP URL content");
        let response = shared
            .http
            .get(value)
            .send()
            .await
            .map_err(|_| fetch_failed())?;
        if !response.status().is_success() {
            return Err(fetch_failed());
        }
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let file_name = reqwest::Url::parse(value)
            .ok()
            .and_then(|u| u.path_segments()?.next_back().map(str::to_owned))
            .filter(|n| !n.is_empty());
        let bytes = response.bytes().await.map_err(|_| fetch_failed())?;
        return Ok(Input::Bytes {
            bytes,
            file_name,
            content_type,
        });
    }
    shared
        .lock()
        .file(value)
        .cloned()
        .map(Input::Existing)
        .ok_or_else(wrong)
}

/// The checks Telegram's servers make on uploaded photo bytes (sendPhoto
/// and each photo of sendMediaGroup): at most 10 MB, an image, width +
/// height at most 10000 and sides at most 20:1.
pub(super) fn check_photo(bytes: &[u8]) -> Result<media::ImageInfo, ApiError> {
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(ApiError::too_large());
    }
    let info = media::sniff(bytes).ok_or_else(|| ApiError::bad_request("IMAGE_PROCESS_FAILED"))?;
    let (w, h) = (info.width.max(1), info.height.max(1));
    if w + h > 10_000 || w.max(h) / w.min(h) > 20 {
        return Err(ApiError::bad_request("PHOTO_INVALID_DIMENSIONS"));
    }
    Ok(info)
}

/// Stores the PhotoSize ladder of photo bytes that passed [`check_photo`],
/// smallest first.
pub(super) async fn store_photo(
    shared: &Shared,
    bytes: Bytes,
    info: media::ImageInfo,
) -> Result<Vec<FileInfo>, ApiError> {
    let mime = info.mime().to_owned();
    // Decoding and re-encoding thumbnails is CPU work: keep it off the
    // async workers.
    let sizes = tokio::task::spawn_blocking(move || media::photo_sizes(&bytes))
        .await
        .map_err(|_| ApiError::new(500, "Internal Server Error"))?;
    Ok(shared.lock().store_photo_sizes(sizes, Some(mime)))
}

/// The check Telegram makes on uploaded document bytes: at most 50 MB.
pub(super) fn check_document(bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(ApiError::too_large());
    }
    Ok(())
}

/// Stores document bytes that passed [`check_document`].
pub(super) fn store_document(
    shared: &Shared,
    bytes: Bytes,
    file_name: Option<String>,
    content_type: Option<&str>,
) -> FileInfo {
    let file_name = file_name.unwrap_or_else(|| "document".to_owned());
    let mime = document_mime(&bytes, Some(&file_name), content_type);
    let dims = media::sniff(&bytes).map(|i| (i.width, i.height));
    shared
        .lock()
        .store_file(bytes, FileKind::Document, Some(file_name), Some(mime), dims)
        .info
}

/// The check Telegram makes on uploaded video bytes: at most 50 MB, as for
/// documents.
pub(super) fn check_video(bytes: &[u8]) -> Result<(), ApiError> {
    check_document(bytes)
}

/// What a bot states about a video it sends (`width`, `height`,
/// `duration`): Telegram would read them from the file, the emulator does
/// not parse video and keeps what it is told (0 when not told).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct VideoParams {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration: Option<u32>,
}

impl VideoParams {
    /// From sendVideo's parameters. Like the Bot API server (which reads
    /// them with `to_integer`), values that are not numbers count as absent.
    pub fn from_params(params: &Params) -> Self {
        let read = |name: &str| {
            params
                .i64(name)
                .ok()
                .flatten()
                .and_then(|v| u32::try_from(v).ok())
        };
        Self {
            width: read("width"),
            height: read("height"),
            duration: read("duration"),
        }
    }

    /// From an InputMediaVideo of sendMediaGroup.
    pub fn from_json(object: &serde_json::Map<String, serde_json::Value>) -> Self {
        let read = |name: &str| {
            object
                .get(name)
                .and_then(serde_json::Value::as_u64)
                .and_then(|v| u32::try_from(v).ok())
        };
        Self {
            width: read("width"),
            height: read("height"),
            duration: read("duration"),
        }
    }
}

/// Stores video bytes that passed [`check_video`].
pub(super) fn store_video(
    shared: &Shared,
    bytes: Bytes,
    file_name: Option<String>,
    content_type: Option<&str>,
    video: VideoParams,
) -> FileInfo {
    let mime = video_mime(file_name.as_deref(), content_type);
    let dims = match (video.width, video.height) {
        (None, None) => None,
        (w, h) => Some((w.unwrap_or(0), h.unwrap_or(0))),
    };
    shared
        .lock()
        .store_media(
            bytes,
            FileKind::Video,
            file_name,
            Some(mime),
            dims,
            video.duration,
        )
        .info
}

/// MIME type for a video: by the extension, then what the client declared
/// when it is a video type, else `video/mp4`.
fn video_mime(file_name: Option<&str>, declared: Option<&str>) -> String {
    let ext = file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    let by_ext = match ext.as_deref() {
        Some("mp4") | Some("m4v") => Some("video/mp4"),
        Some("webm") => Some("video/webm"),
        Some("mov") => Some("video/quicktime"),
        Some("mkv") => Some("video/x-matroska"),
        Some("avi") => Some("video/x-msvideo"),
        _ => None,
    };
    by_ext
        .or(declared.filter(|d| d.starts_with("video/")))
        .unwrap_or("video/mp4")
        .to_owned()
}

/// MIME type for a document: sniffed image type, then the extension, then
/// what the client declared.
fn document_mime(bytes: &[u8], file_name: Option<&str>, declared: Option<&str>) -> String {
    if let Some(info) = media::sniff(bytes) {
        return info.mime().to_owned();
    }
    let ext = file_name
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase());
    let by_ext = match ext.as_deref() {
        Some("txt") => Some("text/plain"),
        Some("json") => Some("application/json"),
        Some("pdf") => Some("application/pdf"),
        Some("csv") => Some("text/csv"),
        Some("zip") => Some("application/zip"),
        Some("html") | Some("htm") => Some("text/html"),
        _ => None,
    };
    by_ext
        .or(declared.filter(|d| !d.is_empty()))
        .unwrap_or("application/octet-stream")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_mime_goes_by_extension_then_declared_video_type() {
        assert_eq!(video_mime(Some("clip.webm"), None), "video/webm");
        assert_eq!(
            video_mime(Some("clip"), Some("video/quicktime")),
            "video/quicktime"
        );
        assert_eq!(
            video_mime(None, Some("application/octet-stream")),
            "video/mp4"
        );
    }

    #[test]
    fn document_mime_prefers_sniffed_image_type() {
        let jpeg = media::test_jpeg(8, 8);
        assert_eq!(document_mime(&jpeg, Some("x.bin"), None), "image/jpeg");
        assert_eq!(document_mime(b"hello", Some("a.txt"), None), "text/plain");
        assert_eq!(
            document_mime(b"\x00\x01", None, Some("application/x-foo")),
            "application/x-foo"
        );
    }
}
