//! Sample "product photos" the Gemini fake recognises: an item-coloured ellipse on a contrasting
//! backdrop, with a little deterministic grain so encoders have real work. Used to make the
//! fixtures under `fixtures/photos/`, the benchmark's 12-megapixel JPEG, and test images.

use std::io::Cursor;
use std::path::Path;

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, ImageFormat, Rgb, RgbImage};

use serde_json::json;

use super::catalog::{PALETTE, Shape, item_for};

/// An RGB image of a `colour` item (a [`PALETTE`] name) of `width` × `height`, with grain of
/// `grain` levels either way (0 for none: lossless formats stay small).
pub fn sample_image(colour: &str, width: u32, height: u32, grain: u8, seed: u64) -> RgbImage {
    let item = PALETTE
        .iter()
        .find(|(n, _)| *n == colour)
        .map_or([128, 128, 128], |(_, c)| *c);
    // A dark backdrop for light items, a light one for the rest.
    let light = !matches!(colour, "white" | "grey" | "yellow" | "pink");
    let back: [i32; 3] = if light { [238, 236, 232] } else { [28, 30, 34] };
    let (cx, cy) = (f64::from(width) / 2.0, f64::from(height) / 2.0);
    let (rx, ry) = (f64::from(width) * 0.36, f64::from(height) * 0.36);
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let span = u64::from(grain) * 2 + 1;
    let mut noise = move || {
        // xorshift64: deterministic grain in -grain..=grain.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % span) as i32 - i32::from(grain)
    };
    RgbImage::from_fn(width, height, |x, y| {
        let dx = (f64::from(x) - cx) / rx;
        let dy = (f64::from(y) - cy) / ry;
        let inside = dx * dx + dy * dy <= 1.0;
        let shade = (f64::from(y) / f64::from(height.max(1)) * 12.0) as i32;
        let n = noise();
        let base = if inside {
            item.map(i32::from)
        } else {
            back.map(|b| b - shade)
        };
        Rgb(base.map(|c| (c + n).clamp(0, 255) as u8))
    })
}

/// Width and height of a sample of `shape` whose long edge is `long_edge`.
pub fn dimensions(shape: Shape, long_edge: u32) -> (u32, u32) {
    let short = long_edge * 2 / 3;
    match shape {
        Shape::Square => (long_edge, long_edge),
        Shape::Landscape => (long_edge, short),
        Shape::Portrait => (short, long_edge),
    }
}

/// Encodes an image as JPEG at `quality`.
pub fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail, and an RGB8 image of any size is encodable.
    let _ = JpegEncoder::new_with_quality(&mut out, quality).encode_image(img);
    out
}

/// Encodes an image as JPEG (quality 85), PNG or (lossless) WebP.
pub fn encode(img: &RgbImage, format: ImageFormat) -> Vec<u8> {
    if format == ImageFormat::Jpeg {
        return jpeg(img, 85);
    }
    let mut out = Cursor::new(Vec::new());
    let _ = DynamicImage::ImageRgb8(img.clone()).write_to(&mut out, format);
    out.into_inner()
}

/// The JPEG with an EXIF block (APP1) holding only an orientation tag (1 to 8), inserted right
/// after the start-of-image marker, as cameras write it.
pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0"); // little-endian TIFF
    tiff.extend_from_slice(&8u32.to_le_bytes()); // first IFD at offset 8
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes()); // count 1
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    let mut app1 = b"Exif\0\0".to_vec();
    app1.extend_from_slice(&tiff);
    let len = u16::try_from(app1.len() + 2).unwrap_or(u16::MAX);
    let mut out = Vec::with_capacity(jpeg.len() + app1.len() + 4);
    out.extend_from_slice(jpeg.get(..2).unwrap_or(&[0xFF, 0xD8]));
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&app1);
    out.extend_from_slice(jpeg.get(2..).unwrap_or(&[]));
    out
}

/// A sample photo as a phone would store it when held sideways: the pixels of a `shape` image
/// turned 90° counter-clockwise, with EXIF orientation 6 ("rotate 90° clockwise to view").
pub fn sideways_jpeg(colour: &str, shape: Shape, long_edge: u32, seed: u64) -> Vec<u8> {
    let (w, h) = dimensions(shape, long_edge);
    let upright = sample_image(colour, w, h, 8, seed);
    let stored = image::imageops::rotate270(&upright);
    with_exif_orientation(&jpeg(&stored, 85), 6)
}

/// How a fixture photo is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    Jpeg,
    Png,
    WebP,
    /// JPEG pixels turned sideways with EXIF orientation 6 (see [`sideways_jpeg`]).
    SidewaysJpeg,
}

/// One photo of `fixtures/photos/`.
#[derive(Debug, Clone, Copy)]
pub struct FixturePhoto {
    pub file: &'static str,
    pub colour: &'static str,
    pub shape: Shape,
    pub long_edge: u32,
    pub stored: Stored,
}

/// The fixture photos: every format, an EXIF-rotated phone photo, and one larger than the
/// worker's 1024 px long edge.
pub const FIXTURE_PHOTOS: [FixturePhoto; 6] = [
    FixturePhoto {
        file: "red-dutch-oven.jpg",
        colour: "red",
        shape: Shape::Square,
        long_edge: 480,
        stored: Stored::Jpeg,
    },
    FixturePhoto {
        file: "blue-sofa.png",
        colour: "blue",
        shape: Shape::Landscape,
        long_edge: 480,
        stored: Stored::Png,
    },
    FixturePhoto {
        file: "green-vase.webp",
        colour: "green",
        shape: Shape::Portrait,
        long_edge: 480,
        stored: Stored::WebP,
    },
    FixturePhoto {
        file: "yellow-rain-jacket-sideways.jpg",
        colour: "yellow",
        shape: Shape::Portrait,
        long_edge: 480,
        stored: Stored::SidewaysJpeg,
    },
    FixturePhoto {
        file: "black-camera.jpg",
        colour: "black",
        shape: Shape::Square,
        long_edge: 400,
        stored: Stored::Jpeg,
    },
    FixturePhoto {
        file: "orange-kayak-large.jpg",
        colour: "orange",
        shape: Shape::Landscape,
        long_edge: 1600,
        stored: Stored::Jpeg,
    },
];

/// A text file that is not a photo (a seller's CSV sent by mistake).
pub const NOT_A_PHOTO: (&str, &[u8]) = ("not-a-photo.txt", b"name,price\nkettle,12\nlamp,30\n");

/// A fixture photo's bytes, as the generator makes them.
pub fn fixture_bytes(f: &FixturePhoto) -> Vec<u8> {
    let seed = f.file.len() as u64;
    let (w, h) = dimensions(f.shape, f.long_edge);
    match f.stored {
        // Less grain on the large one keeps the file small.
        Stored::Jpeg => {
            let grain = if f.long_edge > 1024 { 2 } else { 6 };
            jpeg(&sample_image(f.colour, w, h, grain, seed), 80)
        }
        Stored::Png => encode(&sample_image(f.colour, w, h, 0, seed), ImageFormat::Png),
        Stored::WebP => encode(&sample_image(f.colour, w, h, 0, seed), ImageFormat::WebP),
        Stored::SidewaysJpeg => sideways_jpeg(f.colour, f.shape, f.long_edge, seed),
    }
}

/// Writes the fixture photos, [`NOT_A_PHOTO`] and `expected.json` (what the fake answers for
/// each) to `dir`.
pub fn write_fixtures(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut expected = Vec::new();
    for f in &FIXTURE_PHOTOS {
        std::fs::write(dir.join(f.file), fixture_bytes(f))?;
        if let Some(item) = item_for(f.colour, f.shape) {
            expected.push(json!({
                "file": f.file,
                "item": item.name,
                "category": item.category,
                "brand": item.brand,
                "price_usd": item.price_usd,
                "low_usd": item.low_usd(),
                "high_usd": item.high_usd(),
            }));
        }
    }
    std::fs::write(dir.join(NOT_A_PHOTO.0), NOT_A_PHOTO.1)?;
    let text = serde_json::to_string_pretty(&expected).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("expected.json"), text + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemini::catalog::look;

    #[test]
    fn samples_are_seen_as_their_colour_and_shape() {
        for (colour, _) in PALETTE {
            for shape in [Shape::Portrait, Shape::Square, Shape::Landscape] {
                let (w, h) = dimensions(shape, 240);
                let img = sample_image(colour, w, h, 8, 7);
                let bytes = jpeg(&img, 80);
                let decoded = image::load_from_memory(&bytes).expect("decodes");
                let seen = look(&decoded);
                assert_eq!(
                    (seen.colour, seen.shape),
                    (colour, shape),
                    "{colour} {shape:?}"
                );
            }
        }
    }

    #[test]
    fn exif_orientation_is_readable() {
        let bytes = sideways_jpeg("yellow", Shape::Portrait, 120, 1);
        let mut decoder = image::ImageReader::new(Cursor::new(&bytes))
            .with_guessed_format()
            .expect("format")
            .into_decoder()
            .expect("decoder");
        use image::ImageDecoder;
        assert_eq!(
            decoder.orientation().expect("orientation"),
            image::metadata::Orientation::Rotate90
        );
        assert_eq!(decoder.dimensions(), (120, 80), "stored sideways");
    }
}
