// The original's k6 load script, run as it is, with one check added around it: every
// answer to `POST /ticketing/api/orders` that is 200 or 201 must carry an integer
// `orderId`, as the frozen contract has it (the original's `Long`). k6's output has the
// status of every request but no bodies, so this wraps k6/http's `post` — the one the
// original's default function calls — and checks each order answer's body as it comes.
// tests/original-clients/run.sh reads the checks from k6's JSON output.
import http from 'k6/http';
import { check } from 'k6';
import original, { options as originalOptions } from './k6/reservation_order_load_09_12.js';

export const options = originalOptions;

const post = http.post;
http.post = function (url, body, params) {
  const res = post(url, body, params);
  if (/\/ticketing\/api\/orders$/.test(url) && (res.status === 200 || res.status === 201)) {
    let orderId;
    try { orderId = JSON.parse(res.body).orderId; } catch (e) { orderId = undefined; }
    check(res, { 'order answer has an integer orderId': () => Number.isInteger(orderId) });
  }
  return res;
};

export default original;
