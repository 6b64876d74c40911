// Frame numbers in the picture, for pages (a port of mediagw/bench/framecode.py; keep them alike).
// 24 blocks (2 rows of 12, each floor(width / 12) pixels square) across the top: a 16-bit number
// then its check byte (CRC-8, polynomial 0x07, XOR 0xA5), most significant bit first, dark = 0,
// light = 1. Reading: the mean of the middle half of each block against 128 (grey pixels: R, G
// and B are all about the luma), then the check byte must match, else the frame has no number.
"use strict";
const FrameCode = (() => {
  const COLS = 12, ROWS = 2, BITS = COLS * ROWS;
  const DARK = 32, LIGHT = 224, THRESHOLD = 128, BACKGROUND = 96, BAR = 200, BAR_WIDTH = 16;

  function crc8(bytes) {
    let crc = 0;
    for (const b of bytes) {
      crc ^= b;
      for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
    }
    return crc;
  }
  const check = n => crc8([(n >> 8) & 0xff, n & 0xff]) ^ 0xa5;
  const word = number => { const n = number & 0xffff; return (n << 8) | check(n); };
  const grey = v => `rgb(${v},${v},${v})`;

  // draw frame `number` on a 2D context of a width x height canvas (with a moving bar below)
  function draw(ctx, number, width, height) {
    const size = Math.floor(width / COLS), bits = word(number);
    ctx.fillStyle = grey(BACKGROUND);
    ctx.fillRect(0, 0, width, height);
    for (let i = 0; i < BITS; i++) {
      ctx.fillStyle = grey((bits >> (BITS - 1 - i)) & 1 ? LIGHT : DARK);
      ctx.fillRect((i % COLS) * size, Math.floor(i / COLS) * size, size, size);
    }
    ctx.fillStyle = grey(BAR);
    ctx.fillRect((number * 4) % Math.max(1, width - BAR_WIDTH), ROWS * size, BAR_WIDTH,
                 height - ROWS * size);
  }

  // the number shown by an ImageData (RGBA), or null
  function read(image) {
    const {width, height, data} = image, size = Math.floor(width / COLS);
    if (size < 16 || ROWS * size > height) return null;
    const lo = Math.floor(size / 4), hi = size - Math.floor(size / 4);
    let bits = 0;
    for (let r = 0; r < ROWS; r++) {
      for (let c = 0; c < COLS; c++) {
        let total = 0, count = 0;
        for (let y = r * size + lo; y < r * size + hi; y += 4) {
          for (let x = c * size + lo; x < c * size + hi; x++) {
            const i = 4 * (y * width + x);
            total += (77 * data[i] + 150 * data[i + 1] + 29 * data[i + 2]) >> 8;
            count++;
          }
        }
        bits = bits * 2 + (total > THRESHOLD * count ? 1 : 0);
      }
    }
    const number = bits >> 8;
    return check(number) === (bits & 0xff) ? number : null;
  }

  // read the number of the frame a <video> shows now (scratch: a canvas of the video's size)
  function readVideo(video, scratch) {
    const w = video.videoWidth, h = video.videoHeight;
    if (!w || !h) return null;
    if (scratch.width !== w || scratch.height !== h) { scratch.width = w; scratch.height = h; }
    const ctx = scratch.getContext("2d", {willReadFrequently: true});
    ctx.drawImage(video, 0, 0, w, h);
    return read(ctx.getImageData(0, 0, w, 2 * Math.floor(w / COLS)));
  }

  return {draw, read, readVideo, crc8};
})();
