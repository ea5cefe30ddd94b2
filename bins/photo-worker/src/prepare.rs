//! Image preparation: what a photo goes through before it is sent to the model.
//!
//! 1. The format is told from the bytes (JPEG, PNG, WebP); anything else is refused with a
//!    message saying what it looks like ("it looks like text: ...").
//! 2. The size is read from the header and checked against a pixel budget **before** decoding,
//!    so a decompression bomb costs nothing.
//! 3. The image is decoded, turned upright by its EXIF orientation (phones store sideways
//!    pixels and a tag), and transparency is flattened onto white.
//! 4. It is downscaled so its long edge is at most `long_edge` (default 1024: more pixels only
//!    cost tokens) and re-encoded as JPEG — which also drops every metadata block, so a
//!    photo's GPS position never leaves the machine.
//!
//! CPU-bound: callers run [`prepare`] on a blocking thread (`spawn_blocking`).

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};
use lanes_photos::ImageInfo;

/// How photos are prepared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareConfig {
    /// Longest edge of the image sent to the model, in pixels.
    pub long_edge: u32,
    /// JPEG quality of the image sent (1 to 100).
    pub jpeg_quality: u8,
    /// Largest image accepted, in pixels (width × height), checked before decoding.
    pub max_pixels: u64,
}

impl Default for PrepareConfig {
    /// 1024 px, quality 85, 40 megapixels.
    fn default() -> Self {
        Self {
            long_edge: 1024,
            jpeg_quality: 85,
            max_pixels: 40_000_000,
        }
    }
}

/// A prepared photo: JPEG bytes to send, and what was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub jpeg: Vec<u8>,
    pub info: ImageInfo,
}

/// Why a photo cannot be prepared. All are permanent: the same bytes fail the same way.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    #[error("not an image: the data is not a JPEG, PNG or WebP file ({looks_like})")]
    NotAnImage { looks_like: String },
    #[error("unsupported image format {format}: send a JPEG, PNG or WebP photo")]
    Unsupported { format: String },
    #[error(
        "the image is too large: {width} × {height} = {:.1} megapixels; the limit is {:.1} megapixels",
        (*width as f64) * (*height as f64) / 1e6,
        *max as f64 / 1e6
    )]
    TooManyPixels { width: u32, height: u32, max: u64 },
    #[error("the {format} image does not decode: {reason}")]
    Corrupt { format: String, reason: String },
    #[error("the image could not be re-encoded as JPEG: {reason}")]
    Encode { reason: String },
}

fn format_name(f: ImageFormat) -> String {
    match f {
        ImageFormat::Jpeg => "jpeg".into(),
        ImageFormat::Png => "png".into(),
        ImageFormat::WebP => "webp".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// A short description of bytes that are not an image, for the error message.
fn describe(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "it is empty".into();
    }
    let head = &bytes[..bytes.len().min(48)];
    match std::str::from_utf8(head) {
        Ok(text) if text.chars().all(|c| !c.is_control() || c.is_whitespace()) => {
            let shown: String = text.chars().take(32).collect();
            let more = if bytes.len() > shown.len() { "…" } else { "" };
            format!("it looks like text: {:?}", format!("{shown}{more}"))
        }
        _ => {
            let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
            format!("it starts with bytes {}", hex.join(" "))
        }
    }
}

/// Prepares a photo for the model (see the module docs).
pub fn prepare(bytes: &[u8], cfg: &PrepareConfig) -> Result<Prepared, PrepareError> {
    let format = image::guess_format(bytes).map_err(|_| PrepareError::NotAnImage {
        looks_like: describe(bytes),
    })?;
    if !matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP
    ) {
        return Err(PrepareError::Unsupported {
            format: format_name(format),
        });
    }
    let name = format_name(format);
    let corrupt = |e: image::ImageError| PrepareError::Corrupt {
        format: name.to_uppercase(),
        reason: e.to_string(),
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    // Room for the decoded image (RGBA, 4 bytes a pixel) and the decoder's own buffers.
    limits.max_alloc = Some(cfg.max_pixels.saturating_mul(5).max(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    if u64::from(width) * u64::from(height) > cfg.max_pixels {
        return Err(PrepareError::TooManyPixels {
            width,
            height,
            max: cfg.max_pixels,
        });
    }
    // A broken EXIF block is no reason to refuse a photo: it is shown as stored.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    img.apply_orientation(orientation);

    let long = cfg.long_edge.max(1);
    if img.width().max(img.height()) > long {
        img = img.thumbnail(long, long);
    }
    let rgb = flatten(img);
    let mut jpeg = Vec::with_capacity(rgb.as_raw().len() / 8);
    JpegEncoder::new_with_quality(&mut jpeg, cfg.jpeg_quality.clamp(1, 100))
        .encode_image(&rgb)
        .map_err(|e| PrepareError::Encode {
            reason: e.to_string(),
        })?;
    Ok(Prepared {
        info: ImageInfo {
            format: name,
            width,
            height,
            bytes: bytes.len() as u64,
            sent_width: rgb.width(),
            sent_height: rgb.height(),
            sent_bytes: jpeg.len() as u64,
        },
        jpeg,
    })
}

/// RGB pixels; transparent ones are blended onto white (a cut-out product on black would read
/// as a black item).
fn flatten(img: DynamicImage) -> RgbImage {
    if !img.color().has_alpha() {
        return img.into_rgb8();
    }
    let rgba = img.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let a = u16::from(a);
        let mix = |c: u8| ((u16::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([mix(r), mix(g), mix(b)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(img)
            .write_to(&mut out, ImageFormat::Png)
            .expect("encode");
        out.into_inner()
    }

    #[test]
    fn large_photos_are_downscaled_to_the_long_edge() {
        let cfg = PrepareConfig {
            long_edge: 100,
            ..PrepareConfig::default()
        };
        let p = prepare(&png(400, 200), &cfg).expect("prepares");
        assert_eq!((p.info.sent_width, p.info.sent_height), (100, 50));
        assert_eq!((p.info.width, p.info.height), (400, 200));
        assert_eq!(p.info.format, "png");
        assert_eq!(image::guess_format(&p.jpeg).ok(), Some(ImageFormat::Jpeg));
        // Small ones keep their size.
        let p = prepare(&png(60, 40), &cfg).expect("prepares");
        assert_eq!((p.info.sent_width, p.info.sent_height), (60, 40));
    }

    #[test]
    fn text_and_other_formats_are_refused_clearly() {
        let e = prepare(b"name,price\nkettle,12\n", &PrepareConfig::default()).expect_err("text");
        assert_eq!(
            e.to_string(),
            "not an image: the data is not a JPEG, PNG or WebP file (it looks like text: \"name,price\\nkettle,12\\n\")"
        );
        let e = prepare(&[0, 1, 2, 3, 250], &PrepareConfig::default()).expect_err("binary");
        assert!(
            e.to_string()
                .contains("it starts with bytes 00 01 02 03 fa"),
            "{e}"
        );
        let e = prepare(b"GIF89a\x01\x00\x01\x00", &PrepareConfig::default()).expect_err("gif");
        assert_eq!(
            e.to_string(),
            "unsupported image format gif: send a JPEG, PNG or WebP photo"
        );
        let mut truncated = png(50, 50);
        truncated.truncate(60);
        let e = prepare(&truncated, &PrepareConfig::default()).expect_err("truncated");
        assert!(matches!(e, PrepareError::Corrupt { .. }), "{e:?}");
    }

    #[test]
    fn the_pixel_budget_is_checked_before_decoding() {
        let cfg = PrepareConfig {
            max_pixels: 10_000,
            ..PrepareConfig::default()
        };
        let e = prepare(&png(200, 100), &cfg).expect_err("too big");
        assert_eq!(
            e.to_string(),
            "the image is too large: 200 × 100 = 0.0 megapixels; the limit is 0.0 megapixels"
        );
    }

    #[test]
    fn transparency_is_flattened_onto_white() {
        let img = image::RgbaImage::from_pixel(4, 4, image::Rgba([0, 0, 0, 0]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgba8(img)
            .write_to(&mut out, ImageFormat::Png)
            .expect("encode");
        let p = prepare(out.get_ref(), &PrepareConfig::default()).expect("prepares");
        let back = image::load_from_memory(&p.jpeg)
            .expect("decodes")
            .into_rgb8();
        assert!(back.pixels().all(|p| p.0.iter().all(|c| *c > 240)), "white");
    }
}
