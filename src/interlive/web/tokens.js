// Tokens for the stage pages: where each role goes, and /dev/token (serve --dev only).

export const PAGES = { host: "/static/studio.html", cohost: "/static/cohost.html", audience: "/static/audience.html" };

// A token from /dev/token, or an Error saying how to get one.
export async function devToken(room, identity, role) {
  const url = `/dev/token?${new URLSearchParams({ room, identity, role })}`;
  const response = await fetch(url);
  if (response.status === 404) {
    throw new Error("this server does not mint tokens (start it with --dev, or paste a token from `interlive token`)");
  }
  const body = await response.json();
  if (!response.ok) throw new Error(`${response.status} ${body.error?.code}: ${body.error?.message}`);
  return body.token;
}
