"""Compose the README picture: the bot's answer as Telegram shows it.

The annotated photo (from `detector detect --out`), the bot's caption
under it, and the two buttons every detection answer carries, inside a
chat bubble that quotes the user's photo. Only drawing here: the boxes and
the caption are the detector's real output. To make it again (Pillow, e.g.
the one `cargo xtask setup` installs in .cache/venv; DejaVu fonts):

    cargo run -p polybot-detector -- detect --out /tmp/out .cache/assets/grace_hopper.jpg
    .cache/venv/bin/python docs/images/compose-answer.py \
        /tmp/out/grace_hopper.annotated.jpg "person ×1, tie ×1" docs/images/grace-hopper-answer.jpg

The caption is the counts the detector found, as the bot writes them.
grace_hopper.jpg is the official US Navy portrait of Grace Hopper, in the
public domain, from matplotlib's wheel (mpl-data/sample_data).
"""
import sys
from PIL import Image, ImageDraw, ImageFont

annotated, caption, out = sys.argv[1], sys.argv[2], sys.argv[3]
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"

photo = Image.open(annotated).convert("RGB")
W = 420  # photo width inside the bubble
photo = photo.resize((W, round(photo.height * W / photo.width)), Image.LANCZOS)

pad, radius = 10, 14
f_text = ImageFont.truetype(FONT, 17)
f_small = ImageFont.truetype(FONT, 13)
f_bold = ImageFont.truetype(BOLD, 13)
f_button = ImageFont.truetype(FONT, 15)

quote_h = 44
caption_h = 34
button_h = 38
bubble_w = W + 2 * pad
bubble_h = pad + quote_h + 6 + photo.height + caption_h + pad // 2
canvas_w = bubble_w + 40
canvas_h = 20 + bubble_h + 6 + button_h + 20

bg = (214, 226, 236)  # Telegram's light chat background
img = Image.new("RGB", (canvas_w, canvas_h), bg)
d = ImageDraw.Draw(img)
x0, y0 = 20, 20
d.rounded_rectangle([x0, y0, x0 + bubble_w, y0 + bubble_h], radius, fill="white")

# The quote of the user's photo.
qy = y0 + pad
d.rounded_rectangle([x0 + pad, qy, x0 + bubble_w - pad, qy + quote_h], 6, fill=(232, 241, 250))
d.rectangle([x0 + pad, qy, x0 + pad + 3, qy + quote_h], fill=(51, 144, 236))
d.text((x0 + pad + 12, qy + 5), "You", font=f_bold, fill=(51, 144, 236))
d.text((x0 + pad + 12, qy + 23), "Photo", font=f_small, fill=(90, 90, 90))

py = qy + quote_h + 6
img.paste(photo, (x0 + pad, py))
d.text((x0 + pad + 2, py + photo.height + 7), caption, font=f_text, fill="black")

# The inline buttons under the answer.
by = y0 + bubble_h + 6
half = (bubble_w - 6) // 2
for i, label in enumerate(["Details", "Crops"]):
    bx = x0 + i * (half + 6)
    d.rounded_rectangle([bx, by, bx + half, by + button_h], 10, fill=(170, 190, 205))
    tw = d.textlength(label, font=f_button)
    d.text((bx + (half - tw) / 2, by + 9), label, font=f_button, fill="white")

img.save(out, "JPEG", quality=85, optimize=True, progressive=True)
print(out, img.size)
