//! What a photo's caption asks for: the caption grammar and its domain types.
//!
//! The course's bot treats a photo's caption as the command (`Blur`,
//! `Rotate`, `Concat`, …). The caption is parsed once, at the edge, into an
//! [`Action`]; everything behind the gateway only ever sees valid values,
//! because the parameter types ([`BlurSize`], [`QuarterTurns`],
//! [`Fraction`]) cannot hold anything else, not even when deserialised.
//!
//! # Grammar
//!
//! Case-insensitive; surrounding and repeated whitespace is ignored. The
//! first word may carry a leading `/` and a `@botname` suffix, as Telegram
//! writes commands (`/blur@polybot 8`).
//!
//! | caption                               | action                                  |
//! |---------------------------------------|-----------------------------------------|
//! | none, `detect`, `predict`             | [`Action::Detect`]                      |
//! | `blur [N]`                            | box blur of size N, 1..=64, default 16  |
//! | `contour`                             | horizontal edges                        |
//! | `rotate [ANGLE] [DIRECTION]`          | a turn, default 90° clockwise (below)   |
//! | `segment [T]`                         | threshold T, 0..=255, default 100       |
//! | `salt and pepper [P]`                 | fraction P, 0..=0.5, default 0.2        |
//! | `concat [horizontal\|vertical]`       | join an album, default horizontal       |
//!
//! `rotate` takes an angle in degrees, a multiple of 90 (`90`, `180`,
//! `270`, `-90`, also `90°` or `90 degrees`; `0` and `360` leave the photo
//! as it is), and a direction (`clockwise` or `right`; `anticlockwise`,
//! `anti-clockwise`, `counterclockwise`, `counter-clockwise` or `left`), in
//! either order and each optional: `rotate 90 left`, `rotate left 90`,
//! `rotate left` (90° anticlockwise), `rotate -90` (the same), `rotate`
//! (90° clockwise). A negative angle with a direction is refused, since it
//! could mean either way.
//!
//! `salt and pepper` may also be written as one word (`salt_and_pepper`,
//! `salt-and-pepper`, `salt&pepper`), because a Telegram command cannot
//! contain spaces. A fraction may use a decimal comma (`0,2`).
//!
//! Anything else:
//! - a parameter that is not a value of the right kind, or a number out of
//!   range, is an error whose text names the allowed range
//!   ([`CaptionError::OutOfRange`], [`CaptionError::InvalidParameter`]);
//!   a caption starting with an action word is taken as a command, so
//!   `blur my face` gets that answer rather than a silent detection
//!   (except `detect …`/`predict …`, which get detection, as asked);
//! - a command that names no action (`/sharpen`: a first word starting
//!   with `/`) is [`CaptionError::UnknownCommand`], whose text suggests the
//!   nearest action for a typo (`/blurr`: "Did you mean blur?") and lists
//!   the actions ([`actions_help`]);
//! - any other caption, one word or many ("Lunch", "🐶", "my cat"), is
//!   what people write under a photo, not a command: it gets detection.
//!
//! # JSON
//!
//! [`Action`] travels in the job JSON (schema version 2) in this shape:
//!
//! ```json
//! {"action":"detect"}
//! {"action":"filter","filter":"blur","size":16}
//! {"action":"filter","filter":"contour"}
//! {"action":"filter","filter":"rotate","quarter_turns":1}
//! {"action":"filter","filter":"segment","threshold":100}
//! {"action":"filter","filter":"salt_and_pepper","fraction":0.2}
//! {"action":"concat","direction":"horizontal"}
//! ```
//!
//! A [`Filter`] alone is the same object without the `"action"` member.
//! Deserialising re-validates every parameter, so a queue message cannot
//! smuggle in a blur of size 0 or a fraction of 3.

use std::fmt;
use std::str::FromStr;

use polybot_i18n::{Lang, t};
use serde::{Deserialize, Serialize};

mod rotation;

/// What to do with a photo (or an album of photos).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(from = "ActionRepr", into = "ActionRepr")]
pub enum Action {
    /// Object detection: the bot's original behaviour (and a photo without
    /// a caption).
    #[default]
    Detect,
    /// One of the course's filters, applied to each photo.
    Filter(Filter),
    /// Join the photos of an album into one picture. Only meaningful on an
    /// album; the parser does not know whether the photo is one.
    Concat(Direction),
}

/// The course's per-photo filters, with their parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "filter", rename_all = "snake_case")]
pub enum Filter {
    /// Mean of each size×size window.
    Blur { size: BlurSize },
    /// Absolute difference between horizontal neighbours.
    Contour,
    /// Clockwise quarter turns. Captions give degrees and a direction;
    /// jobs carry the turns (`"quarter_turns": 1` is 90° clockwise, 3 is
    /// 90° anticlockwise), as they always have.
    Rotate { quarter_turns: QuarterTurns },
    /// Grey levels above the threshold become white, the rest black.
    Segment { threshold: u8 },
    /// A fraction of pixels turned white and the same fraction black.
    SaltAndPepper { fraction: Fraction },
}

/// How [`Action::Concat`] joins the photos of an album.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Left to right, the album's first photo on the left.
    #[default]
    Horizontal,
    /// Top to bottom, the album's first photo on top.
    Vertical,
}

/// The side of a box blur's window, 1..=64.
///
/// 64 bounds the work per photo (the summed-area blur does not care, but a
/// bigger window only shrinks the picture further) and matches the range
/// the bot tells users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct BlurSize(u8);

impl BlurSize {
    pub const MIN: u8 = 1;
    pub const MAX: u8 = 64;
    /// The course's default blur level.
    pub const DEFAULT: Self = Self(16);

    pub fn new(size: u8) -> Option<Self> {
        (Self::MIN..=Self::MAX)
            .contains(&size)
            .then_some(Self(size))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for BlurSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A number of clockwise quarter turns, normalised to 0..=3.
///
/// Captions give degrees and a direction (`rotate 90 left` is 3 turns);
/// the stored value is always the remainder modulo 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct QuarterTurns(u8);

impl QuarterTurns {
    /// The course's rotate: one quarter turn.
    pub const DEFAULT: Self = Self(1);

    /// A value already in 0..=3.
    pub fn new(turns: u8) -> Option<Self> {
        (turns < 4).then_some(Self(turns))
    }

    /// Any number of turns, reduced modulo 4 (negative turns count
    /// anticlockwise, so -1 is 3).
    pub fn normalised(turns: i64) -> Self {
        // rem_euclid(4) is in 0..4, so the cast cannot truncate.
        Self(turns.rem_euclid(4) as u8)
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for QuarterTurns {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The fraction of pixels salt and pepper turns white (and, separately,
/// black): finite, 0..=0.5, so that white and black together never exceed
/// every pixel.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Fraction(f64);

impl Fraction {
    pub const MAX: f64 = 0.5;
    /// The course's 0.2.
    pub const DEFAULT: Self = Self(0.2);

    pub fn new(fraction: f64) -> Option<Self> {
        // `+ 0.0` turns -0.0 into 0.0, so equal fractions have equal bits
        // (Hash relies on that) and print as "0".
        (fraction.is_finite() && (0.0..=Self::MAX).contains(&fraction))
            .then_some(Self(fraction + 0.0))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for Fraction {
    fn default() -> Self {
        Self::DEFAULT
    }
}

// NaN cannot be constructed, so equality is reflexive and a total order of
// the values that exist; -0.0 is normalised away, so bits agree with `==`.
impl Eq for Fraction {}

impl std::hash::Hash for Fraction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

/// Why a parameter held in JSON was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(&'static str);

impl TryFrom<u8> for BlurSize {
    type Error = InvalidValue;
    fn try_from(v: u8) -> Result<Self, Self::Error> {
        Self::new(v).ok_or(InvalidValue("a blur size must be from 1 to 64"))
    }
}

impl From<BlurSize> for u8 {
    fn from(v: BlurSize) -> Self {
        v.0
    }
}

impl TryFrom<u8> for QuarterTurns {
    type Error = InvalidValue;
    fn try_from(v: u8) -> Result<Self, Self::Error> {
        Self::new(v).ok_or(InvalidValue("quarter turns must be from 0 to 3"))
    }
}

impl From<QuarterTurns> for u8 {
    fn from(v: QuarterTurns) -> Self {
        v.0
    }
}

impl TryFrom<f64> for Fraction {
    type Error = InvalidValue;
    fn try_from(v: f64) -> Result<Self, Self::Error> {
        Self::new(v).ok_or(InvalidValue(
            "a salt and pepper fraction must be from 0 to 0.5",
        ))
    }
}

impl From<Fraction> for f64 {
    fn from(v: Fraction) -> Self {
        v.0
    }
}

/// The JSON shape of [`Action`]. A separate type because serde's internal
/// tagging cannot hold a newtype variant of a plain string (`Concat`).
#[derive(Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
enum ActionRepr {
    Detect,
    Filter(Filter),
    Concat { direction: Direction },
}

impl From<ActionRepr> for Action {
    fn from(r: ActionRepr) -> Self {
        match r {
            ActionRepr::Detect => Self::Detect,
            ActionRepr::Filter(f) => Self::Filter(f),
            ActionRepr::Concat { direction } => Self::Concat(direction),
        }
    }
}

impl From<Action> for ActionRepr {
    fn from(a: Action) -> Self {
        match a {
            Action::Detect => Self::Detect,
            Action::Filter(f) => Self::Filter(f),
            Action::Concat(direction) => Self::Concat { direction },
        }
    }
}

impl Filter {
    /// The filter's word in captions and logs: `blur`, `contour`, `rotate`,
    /// `segment`, `salt and pepper`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Blur { .. } => "blur",
            Self::Contour => "contour",
            Self::Rotate { .. } => "rotate",
            Self::Segment { .. } => "segment",
            Self::SaltAndPepper { .. } => "salt and pepper",
        }
    }

    /// The caption of the answer's picture: what was done, in words a
    /// person reads at a glance ("rotated 90° clockwise"). The other
    /// filters' canonical captions already read that way ("blur 16"), and
    /// stay in the caption words the bot reads, whatever the language.
    pub fn answer_caption(&self, lang: Lang) -> String {
        match self {
            Self::Rotate { quarter_turns } => lang.text(rotation::done(quarter_turns.0)),
            _ => self.to_string(),
        }
    }

    /// The answer when the picture is too small for this filter, with the
    /// fix that fits it: a smaller window for blur, a larger photo for the
    /// rest (contour needs two pixels across; nothing else has a minimum).
    pub fn too_small_message(&self, lang: Lang) -> String {
        match self {
            Self::Blur { size } if size.0 > 1 => t!(
                lang,
                "too-small-blur",
                size = size.0,
                smaller = (size.0 / 4).max(1)
            ),
            Self::Contour => t!(lang, "too-small-contour"),
            other => t!(lang, "too-small-filter", filter = other.name()),
        }
    }
}

/// The canonical caption: the one [`Action::from_caption`] reads back to
/// this same action (`blur 16`, `rotate 90 clockwise`, `salt and pepper
/// 0.2`, …).
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Blur { size } => write!(f, "blur {}", size.0),
            Self::Contour => f.write_str("contour"),
            Self::Rotate { quarter_turns } => {
                write!(f, "rotate {}", rotation::caption_args(quarter_turns.0))
            }
            Self::Segment { threshold } => write!(f, "segment {threshold}"),
            // f64's Display is the shortest text that reads back to the same
            // value, and never uses an exponent.
            Self::SaltAndPepper { fraction } => write!(f, "salt and pepper {}", fraction.0),
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Horizontal => "horizontal",
            Self::Vertical => "vertical",
        })
    }
}

/// The canonical caption, as for [`Filter`]; detection is `detect`.
impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Detect => f.write_str("detect"),
            Self::Filter(filter) => filter.fmt(f),
            Self::Concat(direction) => write!(f, "concat {direction}"),
        }
    }
}

/// The actions with an example each: the answer to a command that names
/// no action, and the list for `/help`.
pub fn actions_help(lang: Lang) -> String {
    t!(lang, "actions-help")
}

/// Why a caption was not understood. The Display text is the whole reply
/// to send the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptionError {
    /// A number outside the action's range. `action` is the action's
    /// caption word, `allowed` the range as shown to users (`1–64`), `got`
    /// the number as written (for rotate, its parameters: `45 left`).
    #[error("{}", usage(action, Lang::En))]
    OutOfRange {
        action: &'static str,
        allowed: &'static str,
        got: String,
    },
    /// A parameter that is not a value of the right kind at all (`blur
    /// big`, `rotate 1.5`, `contour 3`, `blur 16 please`). Fields as for `OutOfRange`; `got`
    /// is everything after the action word.
    #[error("{}", usage(action, Lang::En))]
    InvalidParameter {
        action: &'static str,
        allowed: &'static str,
        got: String,
    },
    /// A command (a first word starting with `/`) that names no action;
    /// holds that word as written (lower-cased), e.g. `/sharpen`. The text
    /// suggests the nearest action for a typo ([`nearest_action`]).
    #[error("{}", unknown_command(.0, Lang::En))]
    UnknownCommand(String),
}

impl CaptionError {
    /// The reply to send, in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        match self {
            Self::OutOfRange { action, .. } | Self::InvalidParameter { action, .. } => {
                usage(action, lang)
            }
            Self::UnknownCommand(command) => unknown_command(command, lang),
        }
    }
}

/// What each action accepts, for error replies: the range as shown to
/// users and the catalogue key of the sentence that explains it.
struct Usage {
    action: &'static str,
    allowed: &'static str,
    sentence: &'static str,
}

const USAGES: [Usage; 7] = [
    Usage {
        action: "detect",
        allowed: "nothing",
        sentence: "usage-detect",
    },
    Usage {
        action: "blur",
        allowed: "1–64",
        sentence: "usage-blur",
    },
    Usage {
        action: "contour",
        allowed: "nothing",
        sentence: "usage-contour",
    },
    Usage {
        action: "rotate",
        allowed: "90, 180 or 270 degrees",
        sentence: "usage-rotate",
    },
    Usage {
        action: "segment",
        allowed: "0–255",
        sentence: "usage-segment",
    },
    Usage {
        action: "salt and pepper",
        allowed: "0–0.5",
        sentence: "usage-salt-and-pepper",
    },
    Usage {
        action: "concat",
        allowed: "horizontal or vertical",
        sentence: "usage-concat",
    },
];

fn usage_of(action: &str) -> &'static Usage {
    USAGES
        .iter()
        .find(|u| u.action == action)
        .unwrap_or(&USAGES[0])
}

fn usage(action: &str, lang: Lang) -> String {
    lang.text(usage_of(action).sentence)
}

/// The actions as a command spells them, with the word the help uses.
const COMMANDS: [(&str, &str); 8] = [
    ("detect", "detect"),
    ("predict", "predict"),
    ("blur", "blur"),
    ("contour", "contour"),
    ("rotate", "rotate"),
    ("segment", "segment"),
    ("salt_and_pepper", "salt and pepper"),
    ("concat", "concat"),
];

/// The action a mistyped command most likely meant (`/blurr`, `/rotaet`,
/// `/countour`, `/salt`), as the help names it: the nearest by edit
/// distance (a swap of neighbours counts as one edit), at most one edit
/// for a word of up to 4 letters and two for a longer one, so that an
/// unrelated word (`/sharpen`, `/start`) suggests nothing; or the one
/// action the word begins (at least 3 letters: `/rot`, not `/con`).
pub fn nearest_action(command: &str) -> Option<&'static str> {
    let word = command.strip_prefix('/').unwrap_or(command);
    let word = word.split_once('@').map_or(word, |(name, _)| name);
    let chars = word.chars().count();
    if chars == 0 {
        return None;
    }
    let limit = if chars <= 4 { 1 } else { 2 };
    let nearest = COMMANDS
        .iter()
        .map(|&(spelling, shown)| (strsim::osa_distance(word, spelling), shown))
        .filter(|&(distance, _)| distance <= limit)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, shown)| shown);
    let mut begun = COMMANDS
        .iter()
        .filter(|(spelling, _)| chars >= 3 && spelling.starts_with(word));
    nearest.or_else(|| match (begun.next(), begun.next()) {
        (Some(&(_, shown)), None) => Some(shown),
        _ => None,
    })
}

/// The text of [`CaptionError::UnknownCommand`].
fn unknown_command(command: &str, lang: Lang) -> String {
    let help = actions_help(lang);
    match nearest_action(command) {
        Some(action) => t!(
            lang,
            "unknown-command-did-you-mean",
            action = action,
            help = help
        ),
        None => t!(lang, "unknown-command", help = help),
    }
}

fn out_of_range(action: &'static str, got: &str) -> CaptionError {
    CaptionError::OutOfRange {
        action,
        allowed: usage_of(action).allowed,
        got: got.to_owned(),
    }
}

fn invalid(action: &'static str, args: &[&str]) -> CaptionError {
    CaptionError::InvalidParameter {
        action,
        allowed: usage_of(action).allowed,
        got: args.join(" "),
    }
}

/// An integer as written: an optional sign, then ASCII digits only.
fn is_integer(token: &str) -> bool {
    let digits = token.strip_prefix(['+', '-']).unwrap_or(token);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// An integer parameter in `range`; `None` (no parameter) gives `default`.
fn int_param(
    action: &'static str,
    args: &[&str],
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> Result<i64, CaptionError> {
    match args {
        [] => Ok(default),
        [token] if is_integer(token) => match token.parse::<i64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            // Also the integers too long for i64: certainly out of range.
            _ => Err(out_of_range(action, token)),
        },
        _ => Err(invalid(action, args)),
    }
}

impl Action {
    /// Parses a photo's caption (`None` when it has none); see the
    /// [module documentation](self) for the grammar.
    pub fn from_caption(caption: Option<&str>) -> Result<Self, CaptionError> {
        let text = caption.unwrap_or_default().to_lowercase();
        let mut words: Vec<&str> = text.split_whitespace().collect();
        let Some(&first) = words.first() else {
            return Ok(Self::Detect);
        };
        let slashed = first.starts_with('/');
        if let Some(command) = first.strip_prefix('/') {
            // `/blur@polybot`: Telegram's way of addressing one bot in a group.
            words[0] = command.split_once('@').map_or(command, |(name, _)| name);
        }
        let (word, args) = match words.as_slice() {
            ["salt", "and" | "&" | "n", "pepper", args @ ..] => ("salt and pepper", args),
            [
                "salt_and_pepper" | "salt-and-pepper" | "salt&pepper" | "saltandpepper",
                args @ ..,
            ] => ("salt and pepper", args),
            [word, args @ ..] => (*word, args),
            [] => return Ok(Self::Detect),
        };
        let filter = |f| Ok(Self::Filter(f));
        match word {
            // "Detect the dog" asks for what it gets anyway: no error.
            "detect" | "predict" => Ok(Self::Detect),
            "contour" if args.is_empty() => filter(Filter::Contour),
            "contour" => Err(invalid("contour", args)),
            "blur" => {
                let size = int_param("blur", args, 1..=64, 16)?;
                // int_param checked the range, so this always succeeds.
                let size = u8::try_from(size).ok().and_then(BlurSize::new);
                size.map_or_else(
                    || Err(invalid("blur", args)),
                    |size| filter(Filter::Blur { size }),
                )
            }
            "segment" => {
                let threshold = int_param("segment", args, 0..=255, 100)?;
                u8::try_from(threshold).map_or_else(
                    |_| Err(invalid("segment", args)),
                    |threshold| filter(Filter::Segment { threshold }),
                )
            }
            "rotate" => match rotation::quarter_turns(args) {
                Ok(turns) => filter(Filter::Rotate {
                    quarter_turns: QuarterTurns::normalised(i64::from(turns)),
                }),
                Err(rotation::RotationError::NotAQuarterTurn) => {
                    Err(out_of_range("rotate", &args.join(" ")))
                }
                Err(rotation::RotationError::Invalid) => Err(invalid("rotate", args)),
            },
            "salt and pepper" => match args {
                [] => filter(Filter::SaltAndPepper {
                    fraction: Fraction::DEFAULT,
                }),
                [token] => fraction_of(token)
                    .map(|fraction| Self::Filter(Filter::SaltAndPepper { fraction })),
                _ => Err(invalid("salt and pepper", args)),
            },
            "concat" => match args {
                [] | ["horizontal" | "horizontally"] => Ok(Self::Concat(Direction::Horizontal)),
                ["vertical" | "vertically"] => Ok(Self::Concat(Direction::Vertical)),
                _ => Err(invalid("concat", args)),
            },
            _ if slashed => Err(CaptionError::UnknownCommand(first.to_owned())),
            // Not a command: what people write under a photo ("Lunch",
            // "my cat"). They get what a photo without a caption gets.
            _ => Ok(Self::Detect),
        }
    }
}

/// A salt and pepper fraction as written: a decimal number (a decimal comma
/// is allowed, and an exponent, as Rust reads floats).
fn fraction_of(token: &str) -> Result<Fraction, CaptionError> {
    const ACTION: &str = "salt and pepper";
    let number = token.replace(',', ".");
    // Only digits, signs, a point and an exponent: f64's parser also reads
    // "inf" and "nan", which are not numbers a user means.
    let numeric = number.bytes().any(|b| b.is_ascii_digit())
        && number
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e'));
    match number.parse::<f64>() {
        Ok(v) if numeric => Fraction::new(v).ok_or_else(|| out_of_range(ACTION, token)),
        _ => Err(invalid(ACTION, &[token])),
    }
}

impl FromStr for Action {
    type Err = CaptionError;

    /// The same as [`Action::from_caption`] with a caption present.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_caption(Some(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(caption: &str) -> Result<Action, CaptionError> {
        Action::from_caption(Some(caption))
    }

    fn blur(size: u8) -> Action {
        Action::Filter(Filter::Blur {
            size: BlurSize::new(size).expect("valid size"),
        })
    }

    fn rotate(turns: u8) -> Action {
        Action::Filter(Filter::Rotate {
            quarter_turns: QuarterTurns::new(turns).expect("valid turns"),
        })
    }

    fn segment(threshold: u8) -> Action {
        Action::Filter(Filter::Segment { threshold })
    }

    fn salt(fraction: f64) -> Action {
        Action::Filter(Filter::SaltAndPepper {
            fraction: Fraction::new(fraction).expect("valid fraction"),
        })
    }

    fn is_out_of_range(r: &Result<Action, CaptionError>, action: &str) -> bool {
        matches!(r, Err(CaptionError::OutOfRange { action: a, .. }) if *a == action)
    }

    #[test]
    fn no_caption_predict_and_detect_mean_detection() {
        assert_eq!(Action::from_caption(None), Ok(Action::Detect));
        for c in [
            "",
            "   ",
            "predict",
            "Detect",
            "  DETECT  ",
            "/detect",
            "/predict",
            "/detect@anybot",
            "/Predict@Polybot_Bot",
            "detect the dog please",
        ] {
            assert_eq!(parse(c), Ok(Action::Detect), "{c:?}");
        }
    }

    #[test]
    fn blur_takes_an_optional_size_from_1_to_64() {
        assert_eq!(parse("blur"), Ok(blur(16)));
        assert_eq!(parse("Blur"), Ok(blur(16)));
        assert_eq!(parse("  blur   8 "), Ok(blur(8)));
        assert_eq!(parse("/blur@polybot 64"), Ok(blur(64)));
        assert_eq!(parse("blur 1"), Ok(blur(1)));
        assert_eq!(parse("blur +3"), Ok(blur(3)));
        for bad in [
            "blur 0",
            "blur 65",
            "blur -1",
            "blur 99999999999999999999999",
        ] {
            let r = parse(bad);
            assert!(is_out_of_range(&r, "blur"), "{bad:?}: {r:?}");
        }
        assert_eq!(
            parse("blur 65"),
            Err(CaptionError::OutOfRange {
                action: "blur",
                allowed: "1–64",
                got: "65".into()
            })
        );
        let text = parse("blur 0").expect_err("out of range").to_string();
        assert_eq!(text, "Blur takes a size from 1 to 64, e.g. \"blur 16\".");
        for bad in ["blur big", "blur 2.5", "blur 16 please", "blur my face"] {
            assert!(
                matches!(
                    parse(bad),
                    Err(CaptionError::InvalidParameter { action: "blur", .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn contour_takes_no_parameter() {
        assert_eq!(parse("contour"), Ok(Action::Filter(Filter::Contour)));
        assert_eq!(parse("/CONTOUR"), Ok(Action::Filter(Filter::Contour)));
        assert!(matches!(
            parse("contour 3"),
            Err(CaptionError::InvalidParameter {
                action: "contour",
                ..
            })
        ));
    }

    #[test]
    fn rotate_takes_degrees_and_a_direction_in_either_order() {
        assert_eq!(parse("rotate"), Ok(rotate(1)));
        assert_eq!(parse("Rotate 90"), Ok(rotate(1)));
        assert_eq!(parse("rotate 180"), Ok(rotate(2)));
        assert_eq!(parse("rotate 270"), Ok(rotate(3)));
        assert_eq!(parse("rotate -90"), Ok(rotate(3)));
        assert_eq!(parse("rotate 0"), Ok(rotate(0)));
        assert_eq!(parse("rotate 360"), Ok(rotate(0)));
        assert_eq!(parse("/rotate@polybot 90°"), Ok(rotate(1)));
        assert_eq!(parse("rotate 90 degrees"), Ok(rotate(1)));
        for left in [
            "rotate left",
            "rotate anticlockwise",
            "rotate anti-clockwise",
            "rotate counterclockwise",
            "rotate Counter-Clockwise",
            "rotate 90 left",
            "rotate left 90",
            "ROTATE 90 ANTICLOCKWISE",
        ] {
            assert_eq!(parse(left), Ok(rotate(3)), "{left:?}");
        }
        for right in ["rotate right", "rotate clockwise", "rotate 90 right"] {
            assert_eq!(parse(right), Ok(rotate(1)), "{right:?}");
        }
        assert_eq!(parse("rotate 180 left"), Ok(rotate(2)));
        assert_eq!(parse("rotate 270 clockwise"), Ok(rotate(3)));
        // Any multiple of 90, however long: 10^30 ≡ 280 (mod 360), so
        // 10^30 + 350 is 270° and 10^30 + 90 is no quarter turn.
        assert_eq!(
            parse("rotate 1000000000000000000000000000350"),
            Ok(rotate(3))
        );
        assert!(is_out_of_range(
            &parse("rotate 1000000000000000000000000000090"),
            "rotate"
        ));
    }

    #[test]
    fn rotate_refuses_what_is_not_a_quarter_turn_or_a_direction() {
        // Quarter turns as numbers were the old grammar: now they are
        // degrees, and refused with the usage.
        for bad in ["rotate 1", "rotate 2", "rotate 45", "rotate -30 "] {
            let r = parse(bad);
            assert!(is_out_of_range(&r, "rotate"), "{bad:?}: {r:?}");
        }
        let text = parse("rotate 2").expect_err("out of range").to_string();
        assert!(
            text.contains("90, 180 or 270 degrees") && text.contains("\"rotate 90 left\""),
            "{text}"
        );
        for bad in [
            "rotate 1.5",
            "rotate sideways",
            "rotate 90 180",
            "rotate left right",
            "rotate -90 left",
            "rotate this please",
        ] {
            assert!(
                matches!(
                    parse(bad),
                    Err(CaptionError::InvalidParameter {
                        action: "rotate",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_turn_is_captioned_in_degrees_and_answered_in_words() {
        let cases = [
            (0, "rotate 0", "not rotated (0°)"),
            (1, "rotate 90 clockwise", "rotated 90° clockwise"),
            (2, "rotate 180", "rotated 180°"),
            (3, "rotate 90 anticlockwise", "rotated 90° anticlockwise"),
        ];
        for (turns, caption, answer) in cases {
            let Action::Filter(filter) = rotate(turns) else {
                unreachable!("rotate is a filter")
            };
            assert_eq!(filter.to_string(), caption);
            assert_eq!(filter.answer_caption(Lang::En), answer);
        }
        // The other filters answer with their caption, which reads as words.
        let blur16 = Filter::Blur {
            size: BlurSize::DEFAULT,
        };
        assert_eq!(blur16.answer_caption(Lang::En), "blur 16");
    }

    #[test]
    fn the_too_small_answer_suggests_the_fix_that_fits_the_filter() {
        let blur16 = Filter::Blur {
            size: BlurSize::DEFAULT,
        };
        let text = blur16.too_small_message(Lang::En);
        assert!(
            text.contains("16×16") && text.contains("\"blur 4\"") && text.contains("try again"),
            "{text}"
        );
        let text = Filter::Blur {
            size: BlurSize::new(2).expect("valid"),
        }
        .too_small_message(Lang::En);
        assert!(text.contains("\"blur 1\""), "{text}");
        for filter in [
            Filter::Contour,
            Filter::Rotate {
                quarter_turns: QuarterTurns::DEFAULT,
            },
            Filter::Segment { threshold: 100 },
            Filter::Blur {
                size: BlurSize::new(1).expect("valid"),
            },
        ] {
            let text = filter.too_small_message(Lang::En);
            assert!(
                text.contains("larger photo") && text.contains("try again"),
                "{filter}: {text}"
            );
            if !matches!(filter, Filter::Blur { .. }) {
                assert!(!text.contains("blur"), "{filter}: {text}");
            }
        }
        assert!(
            Filter::Contour
                .too_small_message(Lang::En)
                .contains("contour")
        );
    }

    #[test]
    fn segment_takes_a_threshold_from_0_to_255() {
        assert_eq!(parse("segment"), Ok(segment(100)));
        assert_eq!(parse("segment 0"), Ok(segment(0)));
        assert_eq!(parse("SEGMENT 255"), Ok(segment(255)));
        assert!(is_out_of_range(&parse("segment 256"), "segment"));
        assert!(is_out_of_range(&parse("segment -1"), "segment"));
        assert_eq!(
            parse("segment 300").expect_err("out of range").to_string(),
            "Segment takes a threshold from 0 to 255, e.g. \"segment 100\"."
        );
    }

    #[test]
    fn salt_and_pepper_takes_a_fraction_up_to_a_half() {
        for c in [
            "salt and pepper",
            "Salt and Pepper",
            "salt & pepper",
            "/salt_and_pepper",
            "salt-and-pepper",
            "salt   and\tpepper",
        ] {
            assert_eq!(parse(c), Ok(salt(0.2)), "{c:?}");
        }
        assert_eq!(parse("salt and pepper 0.1"), Ok(salt(0.1)));
        assert_eq!(parse("salt and pepper .05"), Ok(salt(0.05)));
        assert_eq!(parse("salt and pepper 0,3"), Ok(salt(0.3)));
        assert_eq!(parse("salt and pepper 0"), Ok(salt(0.0)));
        assert_eq!(parse("salt and pepper -0"), Ok(salt(0.0)));
        assert_eq!(parse("salt and pepper 0.5"), Ok(salt(0.5)));
        assert_eq!(parse("/salt_and_pepper@bot 0.25"), Ok(salt(0.25)));
        for bad in [
            "salt and pepper 0.6",
            "salt and pepper -0.1",
            "salt and pepper 1e999",
        ] {
            assert!(is_out_of_range(&parse(bad), "salt and pepper"), "{bad:?}");
        }
        assert_eq!(
            parse("salt and pepper 2")
                .expect_err("out of range")
                .to_string(),
            "Salt and pepper takes a fraction from 0 to 0.5, e.g. \"salt and pepper 0.2\"."
        );
        for bad in [
            "salt and pepper lots",
            "salt and pepper nan",
            "salt and pepper inf",
        ] {
            assert!(
                matches!(
                    parse(bad),
                    Err(CaptionError::InvalidParameter {
                        action: "salt and pepper",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        // "salt" alone names no action; a sentence about salt is a sentence.
        assert_eq!(parse("salt"), Ok(Action::Detect));
        assert_eq!(parse("salt on the table"), Ok(Action::Detect));
    }

    #[test]
    fn concat_takes_a_direction() {
        assert_eq!(parse("concat"), Ok(Action::Concat(Direction::Horizontal)));
        assert_eq!(
            parse("Concat Horizontal"),
            Ok(Action::Concat(Direction::Horizontal))
        );
        assert_eq!(
            parse("concat vertical"),
            Ok(Action::Concat(Direction::Vertical))
        );
        assert_eq!(
            parse("/concat vertically"),
            Ok(Action::Concat(Direction::Vertical))
        );
        assert!(matches!(
            parse("concat diagonal"),
            Err(CaptionError::InvalidParameter {
                action: "concat",
                ..
            })
        ));
    }

    #[test]
    fn an_unknown_command_gets_the_list_of_actions() {
        for c in [
            "/sharpen",
            "/",
            "/start",
            "/help@polybot",
            "/sharpen 3 now",
            "/blurr",
        ] {
            let err = parse(c).expect_err(c);
            assert!(matches!(err, CaptionError::UnknownCommand(_)), "{c:?}");
            let text = err.to_string();
            assert!(text.contains(&actions_help(Lang::En)), "{text}");
        }
        assert_eq!(
            parse("/Sharpen@bot"),
            Err(CaptionError::UnknownCommand("/sharpen@bot".into()))
        );
        // The list names every action with an example.
        for example in [
            "\"detect\"",
            "\"blur 16\"",
            "\"contour\"",
            "\"rotate 90\"",
            "\"rotate left\"",
            "\"rotate 180\"",
            "\"segment 100\"",
            "\"salt and pepper 0.2\"",
            "\"concat vertical\"",
        ] {
            assert!(actions_help(Lang::En).contains(example), "{example}");
            let caption = example.trim_matches('"');
            assert!(
                parse(caption).is_ok(),
                "the help's example {caption:?} parses"
            );
        }
    }

    #[test]
    fn a_typo_in_a_command_suggests_the_nearest_action() {
        for (command, meant) in [
            ("/blurr", "blur"),
            ("/Blurr@polybot", "blur"),
            ("/blr", "blur"),
            ("/rotaet", "rotate"),
            ("/rotat", "rotate"),
            ("/countour", "contour"),
            ("/segmnt", "segment"),
            ("/conact", "concat"),
            ("/detetc", "detect"),
            ("/salt_and_peper", "salt and pepper"),
            ("/salt", "salt and pepper"),
            ("/rot", "rotate"),
        ] {
            let err = parse(command).expect_err(command);
            let text = err.to_string();
            assert!(
                text.contains(&format!("Did you mean {meant}?")),
                "{command:?}: {text}"
            );
            assert!(text.contains(&actions_help(Lang::En)), "{text}");
        }
        for unrelated in ["/sharpen", "/start", "/help", "/x", "/con", "/", "/@bot"] {
            let text = parse(unrelated).expect_err(unrelated).to_string();
            assert!(!text.contains("Did you mean"), "{unrelated:?}: {text}");
            assert_eq!(nearest_action(unrelated), None, "{unrelated:?}");
        }
    }

    #[test]
    fn an_ordinary_sentence_or_word_gets_detection() {
        for c in [
            "my cat on the sofa",
            "Look at this!",
            "🐱 🐶",
            "sharpen it please",
            "Lunch",
            "Paris",
            "🐶",
            "sharpen",
            "Hello",
            "blurr",
            "@someone",
        ] {
            assert_eq!(parse(c), Ok(Action::Detect), "{c:?}");
        }
    }

    #[test]
    fn json_has_the_documented_shape() {
        let cases = [
            (Action::Detect, r#"{"action":"detect"}"#),
            (blur(16), r#"{"action":"filter","filter":"blur","size":16}"#),
            (
                Action::Filter(Filter::Contour),
                r#"{"action":"filter","filter":"contour"}"#,
            ),
            (
                rotate(1),
                r#"{"action":"filter","filter":"rotate","quarter_turns":1}"#,
            ),
            (
                segment(100),
                r#"{"action":"filter","filter":"segment","threshold":100}"#,
            ),
            (
                salt(0.2),
                r#"{"action":"filter","filter":"salt_and_pepper","fraction":0.2}"#,
            ),
            (
                Action::Concat(Direction::Horizontal),
                r#"{"action":"concat","direction":"horizontal"}"#,
            ),
            (
                Action::Concat(Direction::Vertical),
                r#"{"action":"concat","direction":"vertical"}"#,
            ),
        ];
        for (action, json) in cases {
            assert_eq!(serde_json::to_string(&action).expect("serialise"), json);
            assert_eq!(
                serde_json::from_str::<Action>(json).expect("deserialise"),
                action
            );
        }
        let f = Filter::Blur {
            size: BlurSize::DEFAULT,
        };
        assert_eq!(
            serde_json::to_string(&f).expect("serialise"),
            r#"{"filter":"blur","size":16}"#
        );
        // An integer fraction is still a number.
        assert_eq!(
            serde_json::from_str::<Action>(
                r#"{"action":"filter","filter":"salt_and_pepper","fraction":0}"#
            )
            .expect("deserialise"),
            salt(0.0)
        );
    }

    #[test]
    fn a_queued_rotate_job_reads_as_the_same_clockwise_quarter_turns() {
        // The job JSON has carried clockwise quarter turns since before
        // captions took degrees: a job queued by an older gateway turns the
        // picture the same way.
        for (turns, caption) in [
            (0, "rotate 0"),
            (1, "rotate 90 clockwise"),
            (2, "rotate 180"),
            (3, "rotate 90 anticlockwise"),
        ] {
            let json =
                format!(r#"{{"action":"filter","filter":"rotate","quarter_turns":{turns}}}"#);
            let action: Action = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(action, rotate(turns));
            assert_eq!(action.to_string(), caption);
            assert_eq!(serde_json::to_string(&action).expect("serialise"), json);
        }
    }

    #[test]
    fn deserialising_revalidates_every_parameter() {
        for bad in [
            r#"{"action":"filter","filter":"blur","size":0}"#,
            r#"{"action":"filter","filter":"blur","size":65}"#,
            r#"{"action":"filter","filter":"blur","size":300}"#,
            r#"{"action":"filter","filter":"blur"}"#,
            r#"{"action":"filter","filter":"rotate","quarter_turns":4}"#,
            r#"{"action":"filter","filter":"segment","threshold":256}"#,
            r#"{"action":"filter","filter":"salt_and_pepper","fraction":0.51}"#,
            r#"{"action":"filter","filter":"salt_and_pepper","fraction":-0.1}"#,
            r#"{"action":"filter","filter":"sharpen"}"#,
            r#"{"action":"concat","direction":"diagonal"}"#,
            r#"{"action":"concat"}"#,
            r#"{"action":"dance"}"#,
            r#"{}"#,
        ] {
            assert!(serde_json::from_str::<Action>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn newtypes_hold_only_valid_values() {
        assert_eq!(BlurSize::new(0), None);
        assert_eq!(BlurSize::new(65), None);
        assert_eq!(BlurSize::new(64).map(BlurSize::get), Some(64));
        assert_eq!(QuarterTurns::new(4), None);
        assert_eq!(QuarterTurns::normalised(i64::MIN).get(), 0);
        assert_eq!(QuarterTurns::normalised(-1).get(), 3);
        assert_eq!(Fraction::new(f64::NAN), None);
        assert_eq!(Fraction::new(f64::INFINITY), None);
        assert_eq!(Fraction::new(0.5000001), None);
        assert_eq!(Fraction::new(-0.0).map(|f| f.get().to_bits()), Some(0));
    }

    /// Every valid action, as the parser can produce it.
    fn any_action() -> impl Strategy<Value = Action> {
        prop_oneof![
            Just(Action::Detect),
            (1u8..=64).prop_map(blur),
            Just(Action::Filter(Filter::Contour)),
            (0u8..4).prop_map(rotate),
            any::<u8>().prop_map(segment),
            (0.0..=0.5f64).prop_map(salt),
            // Short decimals, as people write them.
            (0u32..=500).prop_map(|k| salt(f64::from(k) / 1000.0)),
            Just(Action::Concat(Direction::Horizontal)),
            Just(Action::Concat(Direction::Vertical)),
        ]
    }

    /// A valid caption, written as people might: any of the spellings.
    fn any_valid_caption() -> impl Strategy<Value = String> {
        prop_oneof![
            any_action().prop_map(|a| a.to_string()),
            Just("/detect@somebot".to_owned()),
            Just("predict".to_owned()),
            Just("salt & pepper 0.1".to_owned()),
            Just("/salt_and_pepper".to_owned()),
            any::<i64>().prop_map(|n| format!("rotate {n}")),
            any_rotate_caption(),
            Just("".to_owned()),
            Just("a photo of my dog".to_owned()),
            Just("/sharpen".to_owned()),
            Just("blur 100".to_owned()),
            Just("blur big".to_owned()),
        ]
    }

    /// A rotate caption as people might write one: an angle (often a
    /// multiple of 90, sometimes not), a unit, a direction, in any order,
    /// each maybe missing; accepted or not.
    fn any_rotate_caption() -> impl Strategy<Value = String> {
        let angle = prop_oneof![
            (-8i64..=8).prop_map(|k| (k * 90).to_string()),
            (-8i64..=8).prop_map(|k| format!("{}°", k * 90)),
            (0i64..=4).prop_map(|k| format!("+{}", k * 90)),
            any::<i64>().prop_map(|n| n.to_string()),
        ];
        let unit = prop::sample::select(vec!["", "degrees", "deg", "°"]);
        let way = prop::sample::select(vec![
            "",
            "clockwise",
            "right",
            "anticlockwise",
            "anti-clockwise",
            "counterclockwise",
            "counter-clockwise",
            "left",
        ]);
        (prop::option::of(angle), unit, way, any::<bool>()).prop_map(
            |(angle, unit, way, way_first)| {
                let angle = angle.map(|a| format!("{a} {unit}")).unwrap_or_default();
                if way_first {
                    format!("rotate {way} {angle}")
                } else {
                    format!("rotate {angle} {way}")
                }
            },
        )
    }

    /// The same caption with other whitespace and case.
    fn respell(caption: &str, upper: &[bool], spaces: &[&'static str]) -> String {
        let mut out = String::from(spaces[0]);
        for (i, word) in caption.split_whitespace().enumerate() {
            if i > 0 {
                out.push_str(spaces[(i % (spaces.len() - 1)) + 1]);
            }
            for (j, c) in word.chars().enumerate() {
                if upper[(i + j) % upper.len()] {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
            }
        }
        out.push_str(spaces[spaces.len() - 1]);
        out
    }

    proptest! {
        #[test]
        fn parsing_never_panics(caption in any::<String>()) {
            let _ = Action::from_caption(Some(&caption));
        }

        #[test]
        fn parsing_never_panics_on_command_like_text(
            caption in "/?[a-zA-Z_&@ ]{0,20} ?[-+0-9.,e]{0,30}"
        ) {
            let _ = Action::from_caption(Some(&caption));
        }

        #[test]
        fn the_canonical_caption_parses_to_the_same_action(action in any_action()) {
            prop_assert_eq!(parse(&action.to_string()), Ok(action));
        }

        #[test]
        fn every_accepted_rotate_caption_round_trips_through_its_display_form(
            caption in any_rotate_caption()
        ) {
            match parse(&caption) {
                Ok(action) => {
                    prop_assert!(matches!(action, Action::Filter(Filter::Rotate { .. })), "{:?}", action);
                    prop_assert_eq!(parse(&action.to_string()), Ok(action));
                }
                Err(e) => prop_assert!(
                    matches!(
                        e,
                        CaptionError::OutOfRange { action: "rotate", .. }
                            | CaptionError::InvalidParameter { action: "rotate", .. }
                    ),
                    "{:?}: {:?}", caption, e
                ),
            }
        }

        #[test]
        fn a_multiple_of_90_degrees_turns_that_many_quarters(
            k in -1000i64..=1000,
            anticlockwise in any::<bool>(),
        ) {
            let (caption, turns) = if anticlockwise {
                (format!("rotate {} left", k.abs() * 90), -k.abs())
            } else {
                (format!("rotate {}", k * 90), k)
            };
            prop_assert_eq!(
                parse(&caption),
                Ok(Action::Filter(Filter::Rotate {
                    quarter_turns: QuarterTurns::normalised(turns)
                }))
            );
        }

        #[test]
        fn other_angles_are_refused(n in any::<i64>().prop_filter("not a quarter turn", |n| n % 90 != 0)) {
            let r = parse(&format!("rotate {n}"));
            prop_assert!(is_out_of_range(&r, "rotate"), "{:?}", r);
        }

        #[test]
        fn a_caption_without_a_slash_or_an_action_word_gets_detection(
            caption in "[^/ \\t\\n][^\\n]{0,30}"
        ) {
            let first = caption.split_whitespace().next().unwrap_or_default().to_lowercase();
            let action_word = COMMANDS.iter().any(|(spelling, _)| *spelling == first)
                || matches!(first.as_str(), "salt" | "salt-and-pepper" | "salt&pepper" | "saltandpepper")
                || first.starts_with('/');
            prop_assume!(!action_word);
            prop_assert_eq!(parse(&caption), Ok(Action::Detect));
        }

        #[test]
        fn json_round_trips(action in any_action()) {
            let json = serde_json::to_string(&action).expect("serialise");
            prop_assert_eq!(serde_json::from_str::<Action>(&json).expect("deserialise"), action);
        }

        #[test]
        fn whitespace_and_case_do_not_change_the_result(
            caption in any_valid_caption(),
            upper in prop::collection::vec(any::<bool>(), 1..8),
            spaces in prop::collection::vec(
                prop::sample::select(vec![" ", "  ", "\t", "\n", " \u{a0}"]), 3..6),
        ) {
            let spaces: Vec<&str> = spaces.iter().map(|s| &s[..]).collect();
            let mut with_ends = vec![""];
            with_ends.extend(spaces.iter().copied());
            prop_assert_eq!(parse(&respell(&caption, &upper, &with_ends)), parse(&caption));
        }

        #[test]
        fn out_of_range_blur_sizes_are_refused(n in any::<i64>().prop_filter("outside", |n| !(1..=64).contains(n))) {
            let r = parse(&format!("blur {n}"));
            prop_assert!(is_out_of_range(&r, "blur"), "{:?}", r);
        }

        #[test]
        fn out_of_range_thresholds_are_refused(n in any::<i64>().prop_filter("outside", |n| !(0..=255).contains(n))) {
            let r = parse(&format!("segment {n}"));
            prop_assert!(is_out_of_range(&r, "segment"), "{:?}", r);
        }

        #[test]
        fn out_of_range_fractions_are_refused(
            v in prop_oneof![-1e300..-1e-300f64, 0.500_000_001..1e300f64]
        ) {
            let r = parse(&format!("salt and pepper {v}"));
            prop_assert!(is_out_of_range(&r, "salt and pepper"), "{:?}", r);
        }

        #[test]
        fn huge_numbers_are_out_of_range(digits in "[1-9][0-9]{19,40}") {
            let blur = parse(&format!("blur {digits}"));
            let segment = parse(&format!("segment -{digits}"));
            prop_assert!(is_out_of_range(&blur, "blur"));
            prop_assert!(is_out_of_range(&segment, "segment"));
        }
    }
}
