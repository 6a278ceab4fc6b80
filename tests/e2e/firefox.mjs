// Firefox peers for the end-to-end tests: Debian's stock firefox-esr, one process per peer,
// driven over WebDriver BiDi by puppeteer-core (Playwright drives only its own patched
// Firefox). A Firefox peer has the same handle as a Chromium one (harness.pagePeer), so the
// file helpers and waits work on both.
//
// Prefs (shared/NOTES.md): loopback ICE candidates, unobfuscated host addresses (no mDNS
// names, which nothing resolves here), and no permission prompt; together they let a
// loopback-only host gather candidates as Chromium's flags do.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { WAIT_MS, gotoShoal, log, pagePeer, recordPeerConnections, trackBrowser } from './harness.mjs';

export const FIREFOX = process.env.SHOAL_FIREFOX ?? '/usr/bin/firefox-esr';

export const FIREFOX_PREFS = {
  'media.peerconnection.ice.loopback': true,
  'media.peerconnection.ice.obfuscate_host_addresses': false,
  'media.navigator.permission.disabled': true,
  'media.navigator.streams.fake': true,
  // Media may play without a gesture (Chromium's tests pass --autoplay-policy likewise).
  'media.autoplay.default': 0,
};

/** Why Firefox tests cannot run here, or null. */
export function firefoxUnavailable() {
  return existsSync(FIREFOX) ? null : `${FIREFOX} is missing (scripts/setup.sh test installs firefox-esr)`;
}

/**
 * A Firefox process of its own (fresh profile, removed on close) with one shoal page.
 * Options as harness.openPage: `name`, `swarm`, `initScripts` (functions), `startOptions`.
 */
export async function launchFirefoxPeer(relayUrl, { name, swarm = 'default', initScripts = [], startOptions = null } = {}) {
  const profile = mkdtempSync(path.join(tmpdir(), 'shoal-firefox-'));
  const browser = trackBrowser(await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    userDataDir: profile,
    extraPrefsFirefox: FIREFOX_PREFS,
    protocolTimeout: WAIT_MS,
    timeout: WAIT_MS,
  }));
  const close = async () => {
    await browser.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  };
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(WAIT_MS);
    await page.evaluateOnNewDocument(recordPeerConnections);
    for (const script of initScripts) await page.evaluateOnNewDocument(script);
    page.on('console', (m) => log(name, `${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => log(name, `pageerror: ${e.stack ?? e.message}`));
    page.on('requestfailed', (r) => log(name, `request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`));
    await gotoShoal(page, relayUrl, { name, swarm, startOptions });
    return pagePeer({ name, swarm, browser, page, close });
  } catch (e) {
    await close();
    throw e;
  }
}
