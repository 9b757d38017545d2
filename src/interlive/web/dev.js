// dev.html: mint a host, a co-host and an audience token (serve --dev only) and
// link each to its page.
import { fillForm, params } from "/static/ui.js";
import { PAGES, devToken } from "/static/tokens.js";

const form = document.getElementById("form");
const status = document.getElementById("status");
const links = document.getElementById("links");
const handle = { state: "idle", error: null, links: {} };
window.interlive = handle;

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const room = form.elements.room.value.trim();
  links.replaceChildren();
  try {
    for (const role of ["host", "cohost", "audience"]) {
      const identity = form.elements[role].value.trim();
      const token = await devToken(room, identity, role);
      const href = `${PAGES[role]}?${new URLSearchParams({ token })}`;
      handle.links[role] = href;
      const a = document.createElement("a");
      a.href = href;
      a.target = "_blank";
      a.dataset.role = role;
      a.textContent = `${identity} (${role})`;
      const li = document.createElement("li");
      li.append(a);
      links.append(li);
    }
    handle.state = "minted";
    status.textContent = "minted";
  } catch (error) {
    handle.state = "error";
    handle.error = error.message;
    status.textContent = `error: ${error.message}`;
  }
});
fillForm(form, params());
