# Polybot's words, in English: the source every other language follows.
# Caption action words (detect, blur, rotate, …) and settings words
# (photo, counts, plain, …) stay English in every language: the bot
# reads them in captions and commands.

language-name = English

## Counts and details of a detection

counts-none = no objects found
# One class and how many: "person ×2".
counts-item = { $class } ×{ $count }
details-none = No objects found.
details-head = { $count ->
    [one] { $count } object, surest first:
   *[other] { $count } objects, surest first:
}
# One object: its place in the list, class, score (two decimals) and box in percent.
details-line = { $number }. { $class } { $score } — x { $x1 }–{ $x2 }%, y { $y1 }–{ $y2 }%
details-more = … and { $count } more

## Failures: what went wrong with one request

failure-short-not-an-image = not a picture I can read
failure-short-too-large = too large
failure-short-corrupt-image = damaged or incomplete
failure-short-too-small = too small for this filter
failure-short-unsupported-video = a video format I can't read
failure-short-corrupt-video = a damaged or incomplete video
failure-short-internal = something went wrong on my side

failure-not-an-image = Sorry, I couldn't read that file as a picture. Please try again with a JPEG or PNG photo.
failure-too-large = Sorry, that picture is too large for me. Please try again with a smaller photo.
failure-corrupt-image = Sorry, that picture seems to be damaged or incomplete. Please try again with another photo.
failure-too-small = Sorry, that picture is too small for this filter. Please try again with a larger photo.
failure-unsupported-video = Sorry, this video format isn't supported. Please try again with an MP4 video, as your phone's camera records it.
failure-corrupt-video = Sorry, that video seems to be damaged or incomplete. Please try again with another video.
failure-internal = Sorry, something went wrong on my side while looking at your photo. Please try again in a minute.

too-small-blur = Sorry, that picture is smaller than the { $size }×{ $size } blur window. Please try again with a smaller size, e.g. "blur { $smaller }", or a larger photo.
too-small-contour = Sorry, that picture is too narrow for contour, which needs at least 2 pixels across. Please try again with a larger photo.
# $filter is the filter's caption word (blur, rotate, …).
too-small-filter = Sorry, that picture is too small for { $filter }. Please try again with a larger photo.

## What a filter did, as the caption of its answer

rotated-0 = not rotated (0°)
rotated-90-clockwise = rotated 90° clockwise
rotated-180 = rotated 180°
rotated-90-anticlockwise = rotated 90° anticlockwise

## Caption actions: the help and the usage of each

actions-help =
    Send a photo with one of these captions:
    • detect (or no caption): find objects, e.g. "detect"
    • blur [1–64]: e.g. "blur 16"
    • contour: e.g. "contour"
    • rotate [90|180|270] [clockwise|anticlockwise]: e.g. "rotate 90", "rotate left", "rotate 180"
    • segment [0–255]: e.g. "segment 100"
    • salt and pepper [0–0.5]: e.g. "salt and pepper 0.2"
    • concat [horizontal|vertical], on an album of 2 or more photos: e.g. "concat vertical"
usage-detect = Detect takes no parameters: send "detect", or no caption.
usage-blur = Blur takes a size from 1 to 64, e.g. "blur 16".
usage-contour = Contour takes no parameters: send "contour".
usage-rotate = Rotate takes 90, 180 or 270 degrees and a direction, clockwise (right) or anticlockwise (left), e.g. "rotate 90 left"; "rotate" alone turns 90° clockwise.
usage-segment = Segment takes a threshold from 0 to 255, e.g. "segment 100".
usage-salt-and-pepper = Salt and pepper takes a fraction from 0 to 0.5, e.g. "salt and pepper 0.2".
usage-concat = Concat takes horizontal or vertical, e.g. "concat vertical", on an album of 2 or more photos.
unknown-command = I don't know that command. { $help }
# $action is the action the user probably meant ("blur").
unknown-command-did-you-mean = I don't know that command. Did you mean { $action }? { $help }

## Clips

clip-noun-video = video
clip-noun-animation = GIF
clip-noun-video-note = video message
# $clip is one of the clip nouns above.
clip-nothing-found = No objects found in your { $clip }.
# A class's peak in a clip: "person ×3 at 0:02–0:07".
peak-at = { $peak } at { $time }
peak-between = { $peak } at { $from }–{ $to }
# A key frame's caption: "0:07: bus ×1".
key-frame = { $time }: { $counts }

## Albums

# One photo's line of an album's answer: "2: person ×1".
album-line = { $number }: { $text }
album-skipped = { $number }: { $what }, skipped
# What an album's item that was not worked on is (stored in English; the
# key is `item-` and those words, lower case, other characters as hyphens).
item-a-video = a video
item-a-gif = a GIF
item-a-video-message = a video message
item-a-heic-picture = a HEIC picture
item-an-avif-picture = an AVIF picture
item-a-sticker = a sticker
item-an-empty-photo = an empty photo
item-a-file-that-is-not-a-picture = a file that is not a picture
item-a-message = a message
item-a-photo-i-could-not-fetch = a photo I could not fetch
item-not-a-picture-i-can-read = not a picture I can read
item-too-large = too large
item-damaged-or-incomplete = damaged or incomplete
item-too-small-for-this-filter = too small for this filter
item-a-video-format-i-can-t-read = a video format I can't read
item-a-damaged-or-incomplete-video = a damaged or incomplete video
item-something-went-wrong-on-my-side = something went wrong on my side
item-only-the-captioned-photo-was-used = Only the captioned photo was used: in groups Telegram shows me only messages addressed to me, so I did not see the album’s other photos.
album-no-picture = None of this album’s items is a picture I can work on. Send photos (or pictures as files) and I’ll answer them together.

## The buttons under a detection's answer

button-details = Details
button-crops = Crops
button-original = Original

## Settings

settings-describe =
    Confidence: { $confidence }
    Classes: { $classes }
    Output: { $output }
    Labels: { $labels }
    Language: { $language }
settings-standard = standard
settings-all-classes = all
output-photo = photo
output-details = photo and details
output-counts = counts only
labels-score = name and score
labels-name = name only
setting-error-confidence = Confidence is a number from 0.05 to 0.95 (or “standard”), e.g. “/confidence 0.6”; “{ $value }” is not one.
setting-error-classes = I don’t know { $unknown }. I can look for: { $valid }.
setting-error-output = Output is one of photo, details (the photo and a list of objects) or counts (text only), e.g. “/output counts”; “{ $value }” is not one.
setting-error-labels = Labels are “score” (name and score) or “plain” (name only), e.g. “/labels plain”; “{ $value }” is not one.
settings-help =
    /settings – this chat’s settings, with buttons
    /confidence 0.6 – show only objects I am at least this sure of (0.05–0.95, or “standard”)
    /only person,dog – show only these objects (/only all for everything)
    /output photo|details|counts – the photo; the photo and a list of objects; or only the counts
    /labels score|plain – label boxes with the score, or the name only
settings-language-auto = each sender’s own
setting-error-language = Language is one of { $languages } (or “auto” for each sender’s own), e.g. “/language es”; “{ $value }” is not one.
language-en = English
language-ru = Russian
language-es = Spanish

## Start and help

start = Hi! I find the objects in photos and videos. Send me a photo and I’ll reply with what I see, such as “person ×2, car ×1”, and the photo with a box around each. /help lists everything I can do.
detect-hint = Send /detect as the caption of a photo, or as a reply to one, and I’ll find the objects in it. The other actions work the same way, e.g. “blur 16”: /help lists them.
# $detect and $blur are the commands as a group addresses the bot ("/detect@polybot"),
# $actions the list of actions, $settings the settings' lines.
help =
    Send me a photo (or a picture as a file, up to 20 MB) with no caption or the caption “detect”, and I’ll find the objects in it: I reply with the counts, such as “person ×2, car ×1”, and the photo with a box around each object.

    Videos, GIFs and round videos (up to 20 MB) work too: I reply with a few of their frames, boxed, and the most of each object seen at once, and when.

    In a group, Telegram shows me only commands addressed to me: caption a photo { $detect }, or reply { $blur } to a photo (every action works this way).

    { $actions }

    /start – what I do
    /help – this message
    /detect – find objects (a photo’s caption, or a reply to a photo)
    { $settings }
    /language – the language I answer in
    /history – this chat’s latest results
    /forget – erase everything I keep of this chat
    /privacy – what I keep, and for how long
did-you-mean = I don’t know that command. Did you mean { $action }? Send it as the caption of a photo, or as a reply to one.

    { $help }

## The command menu (setMyCommands): a few words each

command-start = What this bot does
command-help = Everything it can do, with examples
command-help-group = What this bot can do
command-detect = Find objects: send it as a photo's caption
command-detect-group = Find objects: a photo's caption, or a reply to a photo
command-settings = Show and change this chat's settings
command-confidence = How sure a detection must be, e.g. /confidence 0.6
command-only = Only these objects, e.g. /only person,dog (or /only all)
command-output = Photo, details or counts, e.g. /output counts
command-labels = Labels with the score or plain, e.g. /labels plain
command-language = The language I answer in, e.g. /language es
command-history = This chat's latest results
command-forget = Erase everything I keep of this chat
command-privacy = What I keep, and for how long

## The bot's profile (setMyDescription, setMyShortDescription): what a new
## user reads before pressing Start. At most 512 and 120 characters.

bot-description = I find the objects in your photos and videos.

    Send me a photo and I’ll reply with what I see, such as “person ×2, car ×1”, and the photo with a box around each object.

    Or give the photo a caption to change the picture instead: “blur 16”, “contour”, “rotate 90”, “segment 100”, “salt and pepper 0.2”, or “concat” on an album.

    /help lists everything I can do.
bot-short-description = Send me a photo: I’ll name the objects in it and box each one. Captions like “blur 16” change the picture.

## Refusals: a request the bot cannot carry out as asked

refusal-concat-needs-album = Concat joins the photos of an album: send two or more photos together, with the caption “concat” (or “concat vertical”).
refusal-concat-in-group = In a group Telegram shows me only the photo of an album that carries the caption, so there is nothing to join. Send the album to me in a private chat with the caption “concat”.
refusal-filter-on-clip = Filters work on photos. Send the video without a caption and I’ll find the objects in it.
refusal-animated-sticker = I can look at photos, videos, GIFs and still stickers, but not at animated stickers. Send a photo or a video instead.
# $format is the file format's name ("HEIC").
refusal-picture-format = I can’t read { $format } files. Send the picture as a photo, not as a file: Telegram then converts it to JPEG for me.

## Clips taken or not

# $clip is a clip noun (video, GIF, video message), $mb the limit in MB.
clip-too-large = Sorry, that { $clip } is too large for me: I can take clips of up to { $mb } MB. Please send a shorter one.

## Notices while a request takes longer than usual

notice-detect = Looking for objects in your photo… it’s taking a little longer than usual.
notice-filter = Working on your picture… it’s taking a little longer than usual.
notice-clip = Looking for objects in your video…
notice-clip-progress = Looking for objects in your video… { $percent }%

## Answers

crops-none = There are no objects to cut out of this photo.
# After the first crop's caption when not every object was cut out.
crops-largest = { " " }— the { $shown } largest of { $count } objects
full-resolution-caption = The same, at full resolution

## Toasts: the short line a pressed button shows

toast-expired = This answer has expired. Send the photo again.
toast-no-original = There is no larger copy of this photo.
toast-details = Details below
toast-crops = Cutting out the objects…
toast-original = Sending the full-resolution photo…
toast-already-sent = Already sent: see above.
toast-on-its-way = On its way…
toast-button-unknown = This button no longer works. Send /settings for new ones.

## Settings, shown and changed

classes-unknown = I can’t check object names yet: the detector has not started. Please try again in a minute.
settings-changed =
    Done. This chat’s settings:
    { $settings }

    /settings shows them with buttons.
settings-message =
    Settings for this chat

    { $settings }

    Tap a button to change one, or type /confidence 0.6, /only person,dog, /output counts or /labels plain.
button-standard = Standard
button-photo = Photo
button-photo-details = Photo + details
button-counts = Counts only
button-labels-score = Labels: name + score
button-labels-name = Labels: name only
button-language-auto = Auto
button-all-objects = All objects
toast-confidence = Confidence: { $value }
toast-objects = Objects: { $value }
toast-output = Output: { $value }
toast-labels = Labels: { $value }
toast-language = Language: { $value }

## Limits

limit-user-rate = That’s more than { $count } photos in a minute, so I skipped this one and will skip any more you send this minute. Please send them again in a minute.
limit-chat-pending = I’m still working on { $count } earlier requests in this chat, so I skipped this one (and will skip more until they’re answered). Please send it again once they’re answered.

## What the bot keeps: /privacy, /history, /forget

# $days is the one retention clock, in days.
privacy =
    What I keep, and for how long:
    • the photos and videos you send me, and the pictures I make from them, in the bot's private storage;
    • for each request: when it was, what was asked and what I found;
    • this chat's settings (until you change them or use /forget).

    Photos, pictures and results are deleted after { $days ->
        [one] { $days } day
       *[other] { $days } days
    }. Nobody sees them but this chat; the people who run the bot can look up results only to fix problems.

    /history shows this chat's latest results. /forget erases everything I keep of this chat at once.
history-empty = Nothing yet: this chat has no results I still keep. Send me a photo!
history-count = { $count ->
    [one] Your latest result:
   *[other] Your latest { $count } results:
}
# One result: when, what was asked, and what was found.
history-line = { $date } · { $action } · { $found }
history-joined = the album joined into one picture
history-album = { $count ->
    [one] an album of { $count } item
   *[other] an album of { $count } items
}
forget-question = Erase everything I keep of this chat: its photos and videos, the pictures I made, the results and the settings? This cannot be undone.
forget-yes = Yes, erase it all
forget-no = No, keep it
forget-done = Deleted { $pictures ->
    [one] { $pictures } picture
   *[other] { $pictures } pictures
} and { $results ->
    [one] { $results } result
   *[other] { $results } results
}.
forget-kept = Nothing was erased.
