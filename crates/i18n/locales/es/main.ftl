# Las palabras de Polybot en español. Las palabras de acción del comentario
# (detect, blur, rotate, …) y las de ajustes (photo, counts, plain, …) siguen
# en inglés en todos los idiomas: el bot las lee en comentarios y comandos.

language-name = Español

## Recuentos y detalles de una detección

counts-none = no se encontraron objetos
# Una clase y cuántos: «persona ×2».
counts-item = { $class } ×{ $count }
details-none = No se encontraron objetos.
details-head = { $count ->
    [one] { $count } objeto, por orden de confianza:
   *[other] { $count } objetos, por orden de confianza:
}
# Un objeto: su puesto en la lista, clase, puntuación (dos decimales) y recuadro en porcentaje.
details-line = { $number }. { $class } { $score } — x { $x1 }–{ $x2 }%, y { $y1 }–{ $y2 }%
details-more = … y { $count } más

## Fallos: qué salió mal con una solicitud

failure-short-not-an-image = no es una imagen que pueda leer
failure-short-too-large = demasiado grande
failure-short-corrupt-image = archivo dañado o incompleto
failure-short-too-small = demasiado pequeña para este filtro
failure-short-unsupported-video = un formato de vídeo que no puedo leer
failure-short-corrupt-video = un vídeo dañado o incompleto
failure-short-internal = algo ha fallado por mi parte

failure-not-an-image = Lo siento, no he podido leer ese archivo como imagen. Vuelve a intentarlo con una foto JPEG o PNG.
failure-too-large = Lo siento, esa imagen es demasiado grande para mí. Vuelve a intentarlo con una foto más pequeña.
failure-corrupt-image = Lo siento, parece que esa imagen está dañada o incompleta. Vuelve a intentarlo con otra foto.
failure-too-small = Lo siento, esa imagen es demasiado pequeña para este filtro. Vuelve a intentarlo con una foto más grande.
failure-unsupported-video = Lo siento, este formato de vídeo no es compatible. Vuelve a intentarlo con un vídeo MP4, como los que graba la cámara de tu móvil.
failure-corrupt-video = Lo siento, parece que ese vídeo está dañado o incompleto. Vuelve a intentarlo con otro vídeo.
failure-internal = Lo siento, algo ha fallado por mi parte al analizar tu foto. Vuelve a intentarlo dentro de un minuto.

too-small-blur = Lo siento, esa imagen es más pequeña que la ventana de desenfoque de { $size }×{ $size }. Vuelve a intentarlo con un tamaño menor, p. ej. “blur { $smaller }”, o con una foto más grande.
too-small-contour = Lo siento, esa imagen es demasiado estrecha para contour, que necesita al menos 2 píxeles de ancho. Vuelve a intentarlo con una foto más grande.
# $filter es la palabra del filtro en el comentario (blur, rotate, …).
too-small-filter = Lo siento, esa imagen es demasiado pequeña para { $filter }. Vuelve a intentarlo con una foto más grande.

## Lo que hizo un filtro, como comentario de su respuesta

rotated-0 = sin girar (0°)
rotated-90-clockwise = girada 90° en sentido horario
rotated-180 = girada 180°
rotated-90-anticlockwise = girada 90° en sentido antihorario

## Acciones del comentario: la ayuda y el uso de cada una

actions-help =
    Envía una foto con uno de estos comentarios:
    • detect (o sin comentario): encontrar objetos, p. ej. “detect”
    • blur [1–64]: desenfocar, p. ej. “blur 16”
    • contour: contornos, p. ej. “contour”
    • rotate [90|180|270] [clockwise|anticlockwise]: girar, p. ej. “rotate 90”, “rotate left”, “rotate 180”
    • segment [0–255]: segmentar por umbral, p. ej. “segment 100”
    • salt and pepper [0–0.5]: ruido de sal y pimienta, p. ej. “salt and pepper 0.2”
    • concat [horizontal|vertical], en un álbum de 2 o más fotos: unirlas, p. ej. “concat vertical”
usage-detect = La acción detect no lleva parámetros: envía “detect” o la foto sin comentario.
usage-blur = La acción blur lleva un tamaño de 1 a 64, p. ej. “blur 16”.
usage-contour = La acción contour no lleva parámetros: envía “contour”.
usage-rotate = La acción rotate lleva 90, 180 o 270 grados y un sentido, clockwise (right, horario) o anticlockwise (left, antihorario), p. ej. “rotate 90 left”; “rotate” solo gira 90° en sentido horario.
usage-segment = La acción segment lleva un umbral de 0 a 255, p. ej. “segment 100”.
usage-salt-and-pepper = La acción salt and pepper lleva una fracción de 0 a 0.5, p. ej. “salt and pepper 0.2”.
usage-concat = La acción concat lleva horizontal o vertical, p. ej. “concat vertical”, en un álbum de 2 o más fotos.
unknown-command = No conozco ese comando. { $help }
# $action es la acción que el usuario probablemente quería («blur»).
unknown-command-did-you-mean = No conozco ese comando. ¿Querías decir { $action }? { $help }

## Clips

clip-noun-video = vídeo
clip-noun-animation = GIF
clip-noun-video-note = videomensaje
# $clip es uno de los sustantivos de clip de arriba.
clip-nothing-found = No he encontrado objetos en tu { $clip }.
# El máximo de una clase en un clip: «persona ×3 en 0:02–0:07».
peak-at = { $peak } en { $time }
peak-between = { $peak } en { $from }–{ $to }
# El comentario de un fotograma clave: «0:07: autobús ×1».
key-frame = { $time }: { $counts }

## Álbumes

# La línea de una foto en la respuesta a un álbum: «2: persona ×1».
album-line = { $number }: { $text }
album-skipped = { $number }: { $what }, sin procesar
# Qué era un elemento del álbum que no se procesó (se guarda en inglés; la
# clave es `item-` y esas palabras, en minúscula, con guiones en lugar de otros caracteres).
item-a-video = un vídeo
item-a-gif = un GIF
item-a-video-message = un videomensaje
item-a-heic-picture = una imagen HEIC
item-an-avif-picture = una imagen AVIF
item-a-sticker = un sticker
item-an-empty-photo = una foto vacía
item-a-file-that-is-not-a-picture = un archivo que no es una imagen
item-a-message = un mensaje
item-a-photo-i-could-not-fetch = una foto que no pude descargar
item-not-a-picture-i-can-read = no es una imagen que pueda leer
item-too-large = demasiado grande
item-damaged-or-incomplete = archivo dañado o incompleto
item-too-small-for-this-filter = demasiado pequeña para este filtro
item-a-video-format-i-can-t-read = un formato de vídeo que no puedo leer
item-a-damaged-or-incomplete-video = un vídeo dañado o incompleto
item-something-went-wrong-on-my-side = algo ha fallado por mi parte
item-only-the-captioned-photo-was-used = Solo he usado la foto con comentario: en los grupos, Telegram solo me muestra los mensajes dirigidos a mí, así que no he visto las demás fotos del álbum.
album-no-picture = Ninguno de los elementos de este álbum es una imagen con la que pueda trabajar. Envía fotos (o imágenes como archivo) y las responderé juntas.

## Los botones bajo la respuesta de una detección

button-details = Detalles
button-crops = Recortes
button-original = Original

## Ajustes

settings-describe =
    Confianza: { $confidence }
    Clases: { $classes }
    Formato de respuesta: { $output }
    Etiquetas: { $labels }
    Idioma: { $language }
settings-standard = estándar
settings-all-classes = todas
output-photo = foto
output-details = foto y detalles
output-counts = solo recuentos
labels-score = nombre y puntuación
labels-name = solo el nombre
setting-error-confidence = La confianza es un número de 0.05 a 0.95 (o “standard”), p. ej. “/confidence 0.6”; “{ $value }” no lo es.
setting-error-classes = No conozco { $unknown }. Puedo buscar: { $valid }.
setting-error-output = El formato de respuesta es photo, details (la foto y una lista de objetos) o counts (solo texto), p. ej. “/output counts”; “{ $value }” no es ninguno de ellos.
setting-error-labels = Las etiquetas son “score” (nombre y puntuación) o “plain” (solo el nombre), p. ej. “/labels plain”; “{ $value }” no es ninguna de ellas.
settings-help =
    /settings – los ajustes de este chat, con botones
    /confidence 0.6 – mostrar solo los objetos de los que esté al menos así de seguro (0.05–0.95, o “standard”)
    /only person,dog – mostrar solo estos objetos (/only all para todos)
    /output photo|details|counts – la foto; la foto y una lista de objetos; o solo los recuentos
    /labels score|plain – etiquetar los recuadros con la puntuación, o solo con el nombre
settings-language-auto = el de cada remitente
setting-error-language = El idioma es uno de { $languages } (o “auto” para el de cada remitente), p. ej. “/language en”; “{ $value }” no es ninguno de ellos.
language-en = Inglés
language-ru = Ruso
language-es = Español

## Inicio y ayuda

start = ¡Hola! Encuentro los objetos en fotos y vídeos. Envíame una foto y te responderé con lo que veo, como “persona ×2, coche ×1”, y la foto con un recuadro alrededor de cada uno. /help muestra todo lo que sé hacer.
detect-hint = Envía /detect como comentario de una foto, o como respuesta a una, y encontraré los objetos que contiene. Las demás acciones funcionan igual, p. ej. “blur 16”: /help las muestra.
# $detect y $blur son los comandos tal como se dirigen al bot en un grupo («/detect@polybot»),
# $actions la lista de acciones, $settings las líneas de ajustes.
help =
    Envíame una foto (o una imagen como archivo, hasta 20 MB) sin comentario o con el comentario “detect”, y encontraré los objetos que contiene: te respondo con los recuentos, como “persona ×2, coche ×1”, y la foto con un recuadro alrededor de cada objeto.

    Los vídeos, GIF y videomensajes (hasta 20 MB) también funcionan: te respondo con algunos de sus fotogramas, con recuadros, y el máximo de cada objeto visto a la vez, y cuándo.

    En un grupo, Telegram solo me muestra los comandos dirigidos a mí: pon { $detect } como comentario de una foto, o responde { $blur } a una foto (todas las acciones funcionan así).

    { $actions }

    /start – qué hago
    /help – este mensaje
    /detect – encontrar objetos (comentario de una foto, o respuesta a una foto)
    { $settings }
    /language – el idioma en el que respondo
    /history – los últimos resultados de este chat
    /forget – borrar todo lo que guardo de este chat
    /privacy – qué guardo y durante cuánto tiempo
did-you-mean = No conozco ese comando. ¿Querías decir { $action }? Envíalo como comentario de una foto, o como respuesta a una.

    { $help }

## El menú de comandos (setMyCommands): pocas palabras cada uno

command-start = Qué hace este bot
command-help = Todo lo que sabe hacer, con ejemplos
command-help-group = Qué sabe hacer este bot
command-detect = Encontrar objetos: envíalo como comentario de una foto
command-detect-group = Encontrar objetos: comentario de una foto, o respuesta a una foto
command-settings = Ver y cambiar los ajustes de este chat
command-confidence = Cuán segura debe ser una detección, p. ej. /confidence 0.6
command-only = Solo estos objetos, p. ej. /only person,dog (o /only all)
command-output = Foto, detalles o recuentos, p. ej. /output counts
command-labels = Etiquetas con la puntuación o sin ella, p. ej. /labels plain
command-language = El idioma en el que respondo, p. ej. /language en
command-history = Los últimos resultados de este chat
command-forget = Borrar todo lo que guardo de este chat
command-privacy = Qué guardo y durante cuánto tiempo

## El perfil del bot (setMyDescription, setMyShortDescription): lo que lee un
## usuario nuevo antes de pulsar Iniciar. Como mucho 512 y 120 caracteres.

bot-description = Encuentro los objetos en tus fotos y vídeos.

    Envíame una foto y te responderé con lo que veo, como “persona ×2, coche ×1”, y la foto con un recuadro alrededor de cada objeto.

    O ponle un comentario a la foto para cambiar la imagen: “blur 16”, “contour”, “rotate 90”, “segment 100”, “salt and pepper 0.2”, o “concat” en un álbum.

    /help muestra todo lo que sé hacer.
bot-short-description = Envíame una foto: nombraré los objetos que hay en ella y los enmarcaré. Comentarios como “blur 16” cambian la imagen.

## Rechazos: una solicitud que el bot no puede cumplir tal como se pidió

refusal-concat-needs-album = La acción concat une las fotos de un álbum: envía dos o más fotos juntas, con el comentario “concat” (o “concat vertical”).
refusal-concat-in-group = En un grupo, Telegram solo me muestra la foto del álbum que lleva el comentario, así que no hay nada que unir. Envíame el álbum en un chat privado con el comentario “concat”.
refusal-filter-on-clip = Los filtros funcionan con fotos. Envía el vídeo sin comentario y encontraré los objetos que contiene.
refusal-animated-sticker = Puedo analizar fotos, vídeos, GIF y stickers estáticos, pero no stickers animados. Envía una foto o un vídeo.
# $format es el nombre del formato de archivo («HEIC»).
refusal-picture-format = No puedo leer archivos { $format }. Envía la imagen como foto, no como archivo: así Telegram la convierte a JPEG por mí.

## Clips aceptados o no

# $clip es un sustantivo de clip (vídeo, GIF, videomensaje), $mb el límite en MB.
clip-too-large = Lo siento, ese { $clip } es demasiado grande para mí: acepto clips de hasta { $mb } MB. Envía uno más corto, por favor.

## Avisos cuando una solicitud tarda más de lo normal

notice-detect = Buscando objetos en tu foto… está tardando un poco más de lo normal.
notice-filter = Procesando tu imagen… está tardando un poco más de lo normal.
notice-clip = Buscando objetos en tu vídeo…
notice-clip-progress = Buscando objetos en tu vídeo… { $percent }%

## Respuestas

crops-none = No hay objetos que recortar en esta foto.
# Tras el comentario del primer recorte, cuando no se recortaron todos los objetos.
crops-largest = { " " }— { $shown ->
    [one] el más grande
   *[other] los { $shown } más grandes
} de { $count } objetos
full-resolution-caption = Lo mismo, a resolución completa

## Avisos breves: la línea corta que muestra un botón al pulsarlo

toast-expired = Esta respuesta ha caducado. Vuelve a enviar la foto.
toast-no-original = No hay una copia más grande de esta foto.
toast-details = Detalles abajo
toast-crops = Recortando los objetos…
toast-original = Enviando la foto a resolución completa…
toast-already-sent = Ya enviado: mira arriba.
toast-on-its-way = En camino…
toast-button-unknown = Este botón ya no funciona. Envía /settings para tener otros nuevos.

## Ajustes: mostrarlos y cambiarlos

classes-unknown = Todavía no puedo comprobar los nombres de objetos: el detector no se ha iniciado. Vuelve a intentarlo dentro de un minuto.
settings-changed =
    Hecho. Los ajustes de este chat:
    { $settings }

    /settings los muestra con botones.
settings-message =
    Ajustes de este chat

    { $settings }

    Toca un botón para cambiar uno, o escribe /confidence 0.6, /only person,dog, /output counts o /labels plain.
button-standard = Estándar
button-photo = Foto
button-photo-details = Foto + detalles
button-counts = Solo recuentos
button-labels-score = Etiquetas: nombre + puntuación
button-labels-name = Etiquetas: solo nombre
button-language-auto = Automático
button-all-objects = Todos los objetos
toast-confidence = Confianza: { $value }
toast-objects = Objetos: { $value }
toast-output = Formato de respuesta: { $value }
toast-labels = Etiquetas: { $value }
toast-language = Idioma: { $value }

## Límites

limit-user-rate = Has enviado más de { $count ->
    [one] { $count } foto
   *[other] { $count } fotos
} en un minuto, así que me he saltado esta y me saltaré las que envíes durante este minuto. Vuelve a enviarlas dentro de un minuto.
limit-chat-pending = Todavía estoy con { $count ->
    [one] { $count } solicitud anterior
   *[other] { $count } solicitudes anteriores
} en este chat, así que me he saltado esta (y me saltaré las siguientes hasta responder a esas). Vuelve a enviarla cuando las haya respondido.

## Lo que guarda el bot: /privacy, /history, /forget

# $days es el único plazo de conservación, en días.
privacy =
    Qué guardo y durante cuánto tiempo:
    • las fotos y vídeos que me envías, y las imágenes que hago a partir de ellos, en el almacenamiento privado del bot;
    • de cada solicitud: cuándo fue, qué se pidió y qué encontré;
    • los ajustes de este chat (hasta que los cambies o uses /forget).

    Las fotos, imágenes y resultados se borran al cabo de { $days ->
        [one] { $days } día
       *[other] { $days } días
    }. Solo se ven en este chat; las personas que gestionan el bot solo pueden consultar los resultados para solucionar problemas.

    /history muestra los últimos resultados de este chat. /forget borra de una vez todo lo que guardo de este chat.
history-empty = Nada todavía: no tengo guardado ningún resultado de este chat. ¡Envíame una foto!
history-count = { $count ->
    [one] Tu último resultado:
   *[other] Tus últimos { $count } resultados:
}
# Un resultado: cuándo, qué se pidió y qué se encontró.
history-line = { $date } · { $action } · { $found }
history-joined = el álbum unido en una sola imagen
history-album = { $count ->
    [one] un álbum de { $count } elemento
   *[other] un álbum de { $count } elementos
}
forget-question = ¿Borro todo lo que guardo de este chat: sus fotos y vídeos, las imágenes que hice, los resultados y los ajustes? No se puede deshacer.
forget-yes = Sí, borrarlo todo
forget-no = No, conservarlo
forget-done = He borrado { $pictures ->
    [one] { $pictures } imagen
   *[other] { $pictures } imágenes
} y { $results ->
    [one] { $results } resultado
   *[other] { $results } resultados
}.
forget-kept = No se ha borrado nada.
