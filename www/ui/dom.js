// Tiny DOM helpers. Text is only ever set through textContent / text nodes:
// nothing here parses HTML, so names and ids from peers stay inert text.

/**
 * el('p', { class: 'hint', text: 'hello' }, child, 'more text')
 * Attribute values go through setAttribute (never parsed as HTML); string
 * children become text nodes.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/** Set text only when it changed (keeps selections and avoids needless layout). */
export function setText(node, text) {
  const value = String(text);
  if (node.textContent !== value) node.textContent = value;
}

export function setHidden(node, hidden) {
  if (node.hidden !== hidden) node.hidden = hidden;
}

export function setClass(node, className) {
  if (node.className !== className) node.className = className;
}

export function setAttr(node, name, value) {
  if (value === null || value === undefined) {
    if (node.hasAttribute(name)) node.removeAttribute(name);
  } else if (node.getAttribute(name) !== String(value)) {
    node.setAttribute(name, String(value));
  }
}

/** Put `children` into `list` in this order, moving only what is out of place. */
export function syncChildren(list, children) {
  children.forEach((child, i) => {
    if (list.children[i] !== child) list.insertBefore(child, list.children[i] ?? null);
  });
  while (list.children.length > children.length) list.lastElementChild.remove();
}

/** A message for any thrown value. */
export function errorText(e) {
  if (e instanceof Error) return e.message || e.name;
  if (typeof e === 'string') return e;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}

/**
 * Coalesce bursts of calls into one run per animation frame, and at most one
 * run per `minGapMs`: a download changes something ten times a second, and
 * each redraw costs the tab style, layout and paint on top of the transfer
 * (measured: the page's rendering was 1.5 of the downloading tab's 12 CPU-s
 * per GiB, plus its compositor's). A hidden tab gets no frames, so there a
 * timer stands in.
 */
export function coalesce(fn, minGapMs = 250) {
  let pending = false;
  let last = -Infinity;
  const run = () => {
    pending = false;
    last = performance.now();
    fn();
  };
  return () => {
    if (pending) return;
    pending = true;
    const wait = last + minGapMs - performance.now();
    if (document.hidden) setTimeout(run, Math.max(wait, 250));
    else if (wait > 0) setTimeout(() => requestAnimationFrame(run), wait);
    else requestAnimationFrame(run);
  };
}

/** Copy `input.value`; if the Clipboard API is missing or refused, select the text instead. */
const clearTimers = new WeakMap();

export async function copyFromInput(input, status) {
  let message;
  try {
    // Absent on plain-http origins other than localhost: fall through.
    await navigator.clipboard.writeText(input.value);
    message = 'Link copied.';
  } catch {
    input.focus();
    input.select();
    message = 'Link selected: press Ctrl+C (⌘C on a Mac) to copy it.';
  }
  status.textContent = message;
  clearTimeout(clearTimers.get(status));
  clearTimers.set(status, setTimeout(() => {
    if (status.textContent === message) status.textContent = '';
  }, 6000));
}
