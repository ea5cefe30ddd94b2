//! Fuzzing the photo decoder (`prepare`): random bytes, and small valid JPEG, PNG and WebP
//! images with bytes flipped, cut, inserted or their header's size fields rewritten. Every input
//! gives a prepared JPEG or a `PrepareError`, never a panic, and a header claiming a huge image
//! is refused before anything is decoded (the pixel budget and the decoder's allocation limit).
//!
//! Bounded: `LANES_FUZZ_CASES` cases per target (default 200). Failures are kept by proptest
//! under `proptest-regressions/` and replayed first.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, RgbaImage};
use photo_worker::prepare::prepare;
use photo_worker::{PrepareConfig, PrepareError};
use proptest::collection::vec;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    lanes_testkit::fuzz::config(200)
}

/// A small image in `format`: a gradient with transparency where the format keeps it.
fn seed_image(format: ImageFormat) -> Vec<u8> {
    let img = RgbaImage::from_fn(37, 23, |x, y| {
        image::Rgba([(x * 7) as u8, (y * 11) as u8, 90, (x * y % 256) as u8])
    });
    let img = match format {
        ImageFormat::Jpeg => DynamicImage::ImageRgb8(DynamicImage::ImageRgba8(img).into_rgb8()),
        _ => DynamicImage::ImageRgba8(img),
    };
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode a seed image");
    out.into_inner()
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    /// Four bytes overwritten by a big-endian `u32` (size fields of PNG and WebP headers).
    Word(usize, u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, x)| Mutation::Set(i, x)),
        2 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), vec(any::<u8>(), 1..32)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        // Mostly in the header, where the dimensions are.
        2 => (0usize..40, prop_oneof![any::<u32>(), Just(u32::MAX), Just(65_535), Just(0)])
            .prop_map(|(i, w)| Mutation::Word(i, w)),
    ]
}

fn mutate(mut bytes: Vec<u8>, m: &Mutation) -> Vec<u8> {
    let n = bytes.len().max(1);
    match m {
        // (An earlier truncation may have left nothing to flip.)
        Mutation::Flip(i, x) => {
            if let Some(b) = bytes.get_mut(i % n) {
                *b ^= x;
            }
        }
        Mutation::Set(i, x) => {
            if let Some(b) = bytes.get_mut(i % n) {
                *b = *x;
            }
        }
        Mutation::Truncate(i) => bytes.truncate(i % n),
        Mutation::Insert(i, b) => {
            let at = i % (bytes.len() + 1);
            bytes.splice(at..at, b.iter().copied());
        }
        Mutation::Word(i, w) => {
            for (k, b) in w.to_be_bytes().into_iter().enumerate() {
                if let Some(slot) = bytes.get_mut(i + k) {
                    *slot = b;
                }
            }
        }
    }
    bytes
}

fn check(bytes: &[u8], cfg: &PrepareConfig) -> Result<(), TestCaseError> {
    match prepare(bytes, cfg) {
        Ok(p) => {
            prop_assert!(p.jpeg.starts_with(&[0xff, 0xd8]), "the output is a JPEG");
            prop_assert!(u64::from(p.info.width) * u64::from(p.info.height) <= cfg.max_pixels);
            prop_assert!(p.info.sent_width.max(p.info.sent_height) <= cfg.long_edge.max(1));
        }
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048)) {
        check(&bytes, &PrepareConfig::default())?;
    }

    #[test]
    fn random_bytes_behind_an_image_signature_never_panic(
        head in prop_oneof![
            Just(&b"\xff\xd8\xff\xe0"[..]),
            Just(&b"\x89PNG\r\n\x1a\n"[..]),
            Just(&b"RIFF\x00\x01\x00\x00WEBPVP8 "[..]),
            Just(&b"RIFF\x00\x01\x00\x00WEBPVP8L"[..]),
            Just(&b"RIFF\x00\x01\x00\x00WEBPVP8X"[..]),
        ],
        tail in vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = head.to_vec();
        bytes.extend(tail);
        check(&bytes, &PrepareConfig::default())?;
    }

    #[test]
    fn mutated_images_never_panic(
        format in prop_oneof![Just(ImageFormat::Jpeg), Just(ImageFormat::Png), Just(ImageFormat::WebP)],
        mutations in vec(mutation(), 1..4),
        small_budget in any::<bool>(),
    ) {
        let mut bytes = seed_image(format);
        for m in &mutations {
            bytes = mutate(bytes, m);
        }
        let cfg = PrepareConfig {
            long_edge: 16,
            max_pixels: if small_budget { 500 } else { 40_000_000 },
            ..PrepareConfig::default()
        };
        check(&bytes, &cfg)?;
    }
}

/// The seeds themselves prepare, so the mutations above start from images that decode.
#[test]
fn the_seed_images_prepare() {
    for format in [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::WebP] {
        let p = prepare(&seed_image(format), &PrepareConfig::default())
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!((p.info.width, p.info.height), (37, 23));
    }
}

/// A PNG whose header claims 65535 × 65535 pixels (a decompression bomb): refused from the
/// header, before any pixel is decoded.
#[test]
fn a_header_claiming_a_huge_image_is_refused_before_decoding() {
    let mut png = seed_image(ImageFormat::Png);
    // IHDR's width and height follow the signature (8), the chunk length (4) and its type (4).
    png[16..20].copy_from_slice(&65_535u32.to_be_bytes());
    png[20..24].copy_from_slice(&65_535u32.to_be_bytes());
    match prepare(&png, &PrepareConfig::default()) {
        Err(PrepareError::TooManyPixels { width, height, .. }) => {
            assert_eq!((width, height), (65_535, 65_535));
        }
        // The IHDR CRC no longer matches: refused as corrupt, also without decoding.
        Err(PrepareError::Corrupt { .. }) => {}
        other => panic!("{other:?}"),
    }
}
