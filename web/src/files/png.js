/** Reading the text chunks of a PNG file (tEXt, zTXt, iTXt), where workflows are stored. */

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
const latin1 = new TextDecoder("latin1");
const utf8 = new TextDecoder("utf-8");
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** Inflates zlib-compressed bytes (the only compression PNG defines). */
async function inflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** tEXt is Latin-1 by the standard, but some writers put UTF-8 there: take UTF-8 when it decodes. */
function decodeText(bytes) {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return latin1.decode(bytes);
  }
}

/** Splits `bytes` at the first zero byte: [before, after]. */
function splitAtNull(bytes) {
  const end = bytes.indexOf(0);
  return end < 0 ? [bytes, new Uint8Array()] : [bytes.subarray(0, end), bytes.subarray(end + 1)];
}

async function readChunk(type, data) {
  const [keyword, rest] = splitAtNull(data);
  const key = latin1.decode(keyword);
  if (type === "tEXt") return [key, decodeText(rest)];
  if (type === "zTXt") return [key, decodeText(await inflate(rest.subarray(1)))];
  // iTXt: compression flag, method, language tag\0, translated keyword\0, UTF-8 text
  const compressed = rest[0] === 1;
  const [, afterLanguage] = splitAtNull(rest.subarray(2));
  const [, text] = splitAtNull(afterLanguage);
  return [key, utf8.decode(compressed ? await inflate(text) : text)];
}

/**
 * The text chunks of a PNG as `{keyword: text}` (the first chunk of a keyword wins); throws when
 * the bytes are not a PNG.
 */
export async function pngText(buffer) {
  const bytes = new Uint8Array(buffer);
  if (!SIGNATURE.every((byte, i) => bytes[i] === byte)) throw new Error("not a PNG file");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const texts = {};
  for (let at = SIGNATURE.length; at + 8 <= bytes.length; ) {
    const length = view.getUint32(at);
    const type = latin1.decode(bytes.subarray(at + 4, at + 8));
    if (type === "IEND") break;
    if (type === "tEXt" || type === "zTXt" || type === "iTXt") {
      const [key, text] = await readChunk(type, bytes.subarray(at + 8, at + 8 + length));
      texts[key] ??= text;
    }
    at += 12 + length;
  }
  return texts;
}
