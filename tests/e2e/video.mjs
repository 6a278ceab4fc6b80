// Test videos, made by Debian's ffmpeg (scripts/setup.sh installs it for `make test`) and
// kept under target/media/: the streaming test and benchmark play them.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';

/**
 * A VP8 WebM of `seconds` at `bitrate` (e.g. '6M'), a keyframe each second
 * (seeks land near where asked), noise so that it really is that large;
 * libvpx's fastest setting. Made once: an existing `file` is used as it is.
 */
export function makeVideo(file, { seconds, bitrate, size = '640x360' }) {
  if (existsSync(file)) return file;
  mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.part.webm`;
  execFileSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=30`, '-t', String(seconds),
    '-vf', 'noise=alls=60:allf=t',
    '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8',
    '-b:v', bitrate, '-minrate', bitrate, '-maxrate', bitrate, '-g', '30', '-an', tmp,
  ], { stdio: 'inherit' });
  renameSync(tmp, file);
  return file;
}
