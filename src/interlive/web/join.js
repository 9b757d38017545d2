// join.html: pick room, name and role; open the page for that role with a token
// (pasted, or minted by a `serve --dev` server's /dev/token).
import { fillForm, params } from "/static/ui.js";
import { PAGES, devToken } from "/static/tokens.js";

const form = document.getElementById("form");
const status = document.getElementById("status");
const handle = { state: "idle", error: null };
window.interlive = handle;

function set(state, detail = "") {
  handle.state = state;
  status.textContent = detail ? `${state}: ${detail}` : state;
  status.dataset.state = state;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const room = form.elements.room.value.trim();
  const identity = form.elements.identity.value.trim();
  const role = form.elements.role.value;
  try {
    let token = form.elements.token.value.trim();
    if (!token) {
      set("minting");
      token = await devToken(room, identity, role);
    }
    window.location.href = `${PAGES[role]}?${new URLSearchParams({ token })}`;
  } catch (error) {
    handle.error = error.message;
    set("error", error.message);
  }
});
fillForm(form, params());
