// Share links: `${origin}/?swarm=NAME#share=<52-char id>`. Mirrors
// shoal_share::parse_link closely enough to recognise the id and the swarm
// before handing the link to the node (which validates it for real).

export const DEFAULT_SWARM = 'default';
const ID_RE = /^[a-z2-7]{52}$/;

/** The share id in a link, a `#share=…` fragment or a bare id; null if none. */
export function shareIdOf(link) {
  const text = String(link).trim();
  const hash = text.indexOf('#');
  const fragment = hash >= 0 ? text.slice(hash + 1) : text;
  const kv = fragment.split('&').find((p) => p.startsWith('share='));
  let value = kv ? kv.slice('share='.length) : null;
  if (value === null && !fragment.includes('=') && !fragment.includes('/')) value = fragment;
  return value && ID_RE.test(value) ? value : null;
}

export function hasShare(link) {
  return /(^|[#&])share=/.test(String(link));
}

export function swarmFromSearch(search) {
  const name = (new URLSearchParams(search).get('swarm') ?? '').trim();
  return name || DEFAULT_SWARM;
}

/**
 * Where a pasted link points: { web, origin, swarm, href } for a full URL
 * (`web`: http or https, the only kind worth offering as a link), null for a
 * bare id or fragment (which means "this server, this swarm").
 */
export function targetOf(link) {
  const text = String(link).trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) return null;
  try {
    const url = new URL(text);
    const web = url.protocol === 'http:' || url.protocol === 'https:';
    return { web, origin: url.origin, swarm: swarmFromSearch(url.search), href: url.href };
  } catch {
    return null;
  }
}
