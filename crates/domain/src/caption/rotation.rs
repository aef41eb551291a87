//! `rotate`'s parameters: an angle in degrees and a direction, as people
//! write them (`rotate 90`, `rotate left`, `rotate 180 clockwise`,
//! `rotate anticlockwise 90`, `rotate -90`), read into clockwise quarter
//! turns; and the words for a turn, in a caption and in an answer.
//!
//! Kept apart from the rest of the grammar because it is the one action
//! whose parameters are more than one value. It works on plain turn counts
//! (0..=3), so the caption module wraps the result in its own types.

/// Which way a direction word turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    Clockwise,
    Anticlockwise,
}

/// Why `rotate`'s parameters were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RotationError {
    /// A whole number of degrees that is not a multiple of 90 (`rotate
    /// 45`, `rotate 2`).
    NotAQuarterTurn,
    /// Anything else: not an angle or a direction, one of them twice, or a
    /// negative angle with a direction (`rotate -90 left` could mean
    /// either way).
    Invalid,
}

/// The direction words: `right` and `left` are what people say for a
/// clockwise and an anticlockwise turn of a photo.
fn way_of(word: &str) -> Option<Way> {
    match word {
        "clockwise" | "cw" | "right" => Some(Way::Clockwise),
        "anticlockwise" | "anti-clockwise" | "counterclockwise" | "counter-clockwise" | "ccw"
        | "left" => Some(Way::Anticlockwise),
        _ => None,
    }
}

/// A unit word after the number (`rotate 90 degrees`, `rotate 90 °`).
fn is_unit(word: &str) -> bool {
    matches!(word, "degrees" | "degree" | "deg" | "°")
}

/// An angle as written: an optional sign, ASCII digits, and an optional
/// `°`. Gives whether it is negative and its remainder modulo 360, from
/// the digits, so that any length is read without overflow.
fn angle_of(token: &str) -> Option<(bool, u32)> {
    let token = token.strip_suffix('°').unwrap_or(token);
    let (negative, digits) = match token.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, token.strip_prefix('+').unwrap_or(token)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rem = digits
        .bytes()
        .fold(0u32, |acc, b| (acc * 10 + u32::from(b - b'0')) % 360);
    Some((negative, rem))
}

/// `rotate`'s parameters (the words after it, lower-case) as clockwise
/// quarter turns, 0..=3. No parameters is a quarter turn clockwise; a
/// direction alone is a quarter turn that way; an angle alone turns
/// clockwise, or anticlockwise when negative. An angle is any multiple of
/// 90 degrees (turning is periodic: 360 and 0 leave the photo as it is).
pub(super) fn quarter_turns(args: &[&str]) -> Result<u8, RotationError> {
    let mut angle = None;
    let mut way = None;
    let mut rest = args.iter();
    while let Some(&word) = rest.next() {
        if let Some(w) = way_of(word) {
            if way.replace(w).is_some() {
                return Err(RotationError::Invalid);
            }
        } else if let Some(a) = angle_of(word) {
            if angle.replace(a).is_some() {
                return Err(RotationError::Invalid);
            }
            // A unit may follow the number.
            if rest.as_slice().first().is_some_and(|w| is_unit(w)) {
                rest.next();
            }
        } else {
            return Err(RotationError::Invalid);
        }
    }
    let (negative, degrees) = angle.unwrap_or((false, 90));
    if degrees % 90 != 0 {
        return Err(RotationError::NotAQuarterTurn);
    }
    // degrees < 360, so this is 0..=3.
    let turns = (degrees / 90) as u8;
    let clockwise = match (way, negative) {
        (Some(_), true) => return Err(RotationError::Invalid),
        (Some(Way::Clockwise) | None, false) => true,
        (Some(Way::Anticlockwise), false) | (None, true) => false,
    };
    Ok(if clockwise { turns } else { (4 - turns) % 4 })
}

/// The canonical parameters for a number of clockwise quarter turns (taken
/// modulo 4): what [`quarter_turns`] reads back to the same turns.
pub(super) fn caption_args(turns: u8) -> &'static str {
    match turns % 4 {
        0 => "0",
        1 => "90 clockwise",
        2 => "180",
        _ => "90 anticlockwise",
    }
}

/// What a turn did, for the caption of the answer: its catalogue key.
pub(super) fn done(turns: u8) -> &'static str {
    match turns % 4 {
        0 => "rotated-0",
        1 => "rotated-90-clockwise",
        2 => "rotated-180",
        _ => "rotated-90-anticlockwise",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turns(caption_args: &str) -> Result<u8, RotationError> {
        let words: Vec<&str> = caption_args.split_whitespace().collect();
        quarter_turns(&words)
    }

    #[test]
    fn an_angle_alone_turns_clockwise_and_a_negative_one_anticlockwise() {
        for (args, expected) in [
            ("", 1),
            ("90", 1),
            ("+90", 1),
            ("180", 2),
            ("270", 3),
            ("-90", 3),
            ("-180", 2),
            ("-270", 1),
            ("0", 0),
            ("360", 0),
            ("-360", 0),
            ("450", 1),
            ("90°", 1),
            ("90 degrees", 1),
            ("90 °", 1),
            ("-90 deg", 3),
        ] {
            assert_eq!(turns(args), Ok(expected), "{args:?}");
        }
    }

    #[test]
    fn a_direction_turns_its_way_before_or_after_the_angle() {
        for (args, expected) in [
            ("clockwise", 1),
            ("right", 1),
            ("cw", 1),
            ("left", 3),
            ("anticlockwise", 3),
            ("anti-clockwise", 3),
            ("counterclockwise", 3),
            ("counter-clockwise", 3),
            ("ccw", 3),
            ("90 left", 3),
            ("left 90", 3),
            ("90 degrees left", 3),
            ("left 90°", 3),
            ("180 clockwise", 2),
            ("anticlockwise 180", 2),
            ("270 anticlockwise", 1),
            ("right 270", 3),
            ("+90 left", 3),
        ] {
            assert_eq!(turns(args), Ok(expected), "{args:?}");
        }
    }

    #[test]
    fn other_angles_and_words_are_refused() {
        for args in ["1", "2", "3", "45", "-30", "100 left"] {
            assert_eq!(turns(args), Err(RotationError::NotAQuarterTurn), "{args:?}");
        }
        for args in [
            "1.5",
            "left right",
            "90 180",
            "-90 left",
            "left -90",
            "degrees",
            "degrees 90",
            "90 degrees degrees",
            "a bit",
            "°",
            "-",
        ] {
            assert_eq!(turns(args), Err(RotationError::Invalid), "{args:?}");
        }
    }

    #[test]
    fn the_canonical_words_read_back_to_the_same_turns() {
        for t in 0..4 {
            assert_eq!(turns(caption_args(t)), Ok(t), "{t}");
        }
        let done = |t| polybot_i18n::Lang::En.text(done(t));
        assert_eq!(done(1), "rotated 90° clockwise");
        assert_eq!(done(2), "rotated 180°");
        assert_eq!(done(3), "rotated 90° anticlockwise");
    }
}
