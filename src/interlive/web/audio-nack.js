// Asks for audio NACK (RFC 4585 generic NACK) in a description Chromium wrote.
//
// Chromium's NetEq can NACK lost Opus packets, but Chromium does not offer
// `a=rtcp-fb:<opus> nack`, and an answerer may only keep feedback the offer
// lists. So the pages add the line to their own descriptions before setting
// them (SDP munging, as LiveKit's web client does): the server then answers
// with it, Chromium turns its audio NACK on, and the server resends lost
// audio from its history while the viewer's jitter buffer still waits for it.
// A description that already asks, or has no Opus, comes back unchanged.

const OPUS_RTPMAP = /^a=rtpmap:(\d+) opus\/48000/i;

// The payload type an rtpmap/fmtp/rtcp-fb line is about, or null.
function linePt(line) {
  const found = /^a=(?:rtpmap|fmtp|rtcp-fb):(\d+)[ \t]/.exec(line);
  return found ? found[1] : null;
}

// Adds the nack line to one audio section (its lines, m= first), in place.
function addToSection(section) {
  const opus = section.map((line) => OPUS_RTPMAP.exec(line)).filter(Boolean).map((m) => m[1]);
  for (const pt of opus) {
    if (section.some((line) => line.trim() === `a=rtcp-fb:${pt} nack`)) continue;
    // after the payload type's own lines, where Chromium keeps them
    let last = -1;
    section.forEach((line, i) => {
      if (linePt(line) === pt) last = i;
    });
    section.splice(last + 1, 0, `a=rtcp-fb:${pt} nack`);
  }
}

export function withAudioNack(sdp) {
  const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
  const lines = sdp.split(eol);
  const trailing = lines.length > 0 && lines[lines.length - 1] === "" ? lines.pop() : null;
  const sections = [[]];
  for (const line of lines) {
    if (line.startsWith("m=")) sections.push([]);
    sections[sections.length - 1].push(line);
  }
  for (const section of sections.slice(1)) {
    if (section[0].startsWith("m=audio ")) addToSection(section);
  }
  const out = sections.flat();
  if (trailing !== null) out.push(trailing);
  return out.join(eol);
}
