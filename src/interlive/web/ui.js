// Page plumbing shared by publish.html and watch.html: query-string
// parameters, the status line and the `window.interlive` handle that tests read.

export function params() {
  return new URLSearchParams(window.location.search);
}

// Fills each form field whose name appears in the query string.
export function fillForm(form, query) {
  for (const element of form.elements) {
    if (element.name && query.has(element.name)) element.value = query.get(element.name);
  }
}

// The page's observable state: `window.interlive.state` and `.pc` for tests,
// mirrored in the status element for people.
export function createState(statusElement) {
  const handle = { state: "idle", pc: null, error: null, location: null };
  window.interlive = handle;
  return {
    handle,
    set(state, detail = "") {
      handle.state = state;
      statusElement.textContent = detail ? `${state}: ${detail}` : state;
      statusElement.dataset.state = state;
    },
    fail(error) {
      handle.error = String(error && error.message ? error.message : error);
      handle.state = "error";
      statusElement.textContent = `error: ${handle.error}`;
      statusElement.dataset.state = "error";
    },
  };
}

export function endpoint(kind, room, identity = "") {
  const path = [kind, room, identity].filter(Boolean).map(encodeURIComponent).join("/");
  return new URL(`/${path}`, window.location.origin).href;
}

// The session lifecycle both pages share: start on submit (or ?autostart=1), stop on
// the button, and DELETE the session on pagehide so the server lets go at once.
export function bindSession({ form, stopButton, status, setRunning, start, release, current }) {
  async function stop() {
    try {
      await release();
      status.set("stopped");
    } catch (error) {
      status.fail(error);
    } finally {
      setRunning(false);
    }
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    start();
  });
  stopButton.addEventListener("click", stop);
  window.addEventListener("pagehide", () => {
    const client = current();
    if (client && client.location) {
      fetch(client.location, { method: "DELETE", headers: client.headers(), keepalive: true });
    }
  });
  const query = params();
  fillForm(form, query);
  status.handle.stop = stop;
  if (query.get("autostart") === "1" && form.reportValidity()) start();
  return stop;
}
