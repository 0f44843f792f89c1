/** Colours of links and sockets by type, the palette ComfyUI users know; other types get a stable hue. */

import { LGraphCanvas } from "/lib/litegraph/litegraph.es.js";

const KNOWN = {
  MODEL: "#b39ddb",
  CLIP: "#ffd500",
  VAE: "#ff6e6e",
  CONDITIONING: "#ffa931",
  LATENT: "#ff9cf9",
  IMAGE: "#64b5f6",
  MASK: "#81c784",
  CONTROL_NET: "#6ee7b7",
  CLIP_VISION: "#a8dadc",
  CLIP_VISION_OUTPUT: "#ad7452",
  STYLE_MODEL: "#c2ffae",
  UPSCALE_MODEL: "#d4a373",
  SAMPLER: "#ecb4b4",
  SIGMAS: "#cdffcd",
  NOISE: "#b0b0b0",
  GUIDER: "#66ffff",
  INT: "#4fc3f7",
  FLOAT: "#aed581",
  STRING: "#b0bec5",
  BOOLEAN: "#ff8a65",
  COMBO: "#ce93d8",
};

/** The colour of links of `type`: the palette's, else a hue derived from the name. */
export function typeColour(type) {
  if (KNOWN[type]) return KNOWN[type];
  let hash = 0;
  for (const char of String(type)) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360}, 55%, 65%)`;
}

/** Every socket and output type named in `/object_info`. */
function typesOf(objectInfo) {
  const types = new Set(Object.keys(KNOWN));
  for (const node of Object.values(objectInfo)) {
    for (const section of ["required", "optional"]) {
      for (const [type] of Object.values(node.input?.[section] ?? {})) if (typeof type === "string") types.add(type);
    }
    for (const type of node.output ?? []) if (typeof type === "string") types.add(type);
  }
  return types;
}

/** Colours links and sockets of every type in `objectInfo` on `canvas`. */
export function applyTypeColours(canvas, objectInfo) {
  for (const type of typesOf(objectInfo)) {
    const colour = typeColour(type);
    LGraphCanvas.link_type_colors[type] = colour;
    canvas.default_connection_color_byType[type] = colour;
  }
}
