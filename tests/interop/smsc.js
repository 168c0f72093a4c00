#!/usr/bin/env node
// An SMSC built on the npm package `smpp` (node-smpp, which this project did not write), for
// the gateway's interoperability test (sms-gateway/tests/interop_npm.rs).
//
//   node tests/interop/smsc.js [PORT] [SYSTEM_ID] [PASSWORD]
//
// Listens on 127.0.0.1:PORT (0: any free port) and accepts one bind_transceiver with the given
// credentials (default openhall / secret). Everything it sees is printed on stdout as one JSON
// object per line:
//   {"event":"listening","port":N}
//   {"event":"bound","system_id":…}             {"event":"bind_refused"}
//   {"event":"submit_sm","message_id":…,"source":…,"destination":…,"data_coding":…,
//    "esm_class":…,"registered_delivery":…,"udh":[[…bytes…]],"text":…}
//        (short_message as node-smpp decodes it: UCS-2 → text, UDH split off into "udh")
//   {"event":"deliver_sm_resp","id":…,"status":N}
//   {"event":"receipt_resp","message_id":…,"status":N}
//   {"event":"unbind"}  {"event":"closed"}  {"event":"error","message":…}
// Each line read on stdin, {"id":…,"from":"13800138000","to":"10086","text":"…"}, is sent
// to the bound ESME as an MO deliver_sm in UCS-2. Every submit_sm that asks for a receipt
// gets a delivery receipt (DELIVRD). Closing stdin stops the SMSC.
'use strict';

const readline = require('readline');
const smpp = require('smpp');

const port = Number(process.argv[2] || 0);
const systemId = process.argv[3] || 'openhall';
const password = process.argv[4] || 'secret';

let bound = null;
let nextId = 0;

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function smppTime(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}`;
}

function sendReceipt(session, submit, messageId) {
  const now = smppTime(new Date());
  const text = `id:${messageId} sub:001 dlvrd:001 submit date:${now} done date:${now} stat:DELIVRD err:000 text:`;
  session.deliver_sm({
    source_addr: submit.destination_addr,
    destination_addr: submit.source_addr,
    esm_class: 0x04,
    data_coding: 0x00,
    short_message: text,
    receipted_message_id: messageId,
    message_state: 2,
  }, (resp) => emit({ event: 'receipt_resp', message_id: messageId, status: resp.command_status }));
}

const server = smpp.createServer((session) => {
  session.on('bind_transceiver', (pdu) => {
    if (pdu.system_id !== systemId || pdu.password !== password) {
      session.send(pdu.response({ command_status: smpp.ESME_RBINDFAIL }));
      emit({ event: 'bind_refused' });
      session.close();
      return;
    }
    session.send(pdu.response({ system_id: 'NODESMSC' }));
    bound = session;
    emit({ event: 'bound', system_id: pdu.system_id, interface_version: pdu.interface_version });
  });
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => {
    session.send(pdu.response());
    emit({ event: 'unbind' });
    if (bound === session) bound = null;
    session.close();
  });
  session.on('submit_sm', (pdu) => {
    const messageId = `N${++nextId}`;
    session.send(pdu.response({ message_id: messageId }));
    const sm = pdu.short_message || {};
    const message = sm.message === undefined ? sm : sm.message;
    emit({
      event: 'submit_sm',
      message_id: messageId,
      source: pdu.source_addr,
      destination: pdu.destination_addr,
      data_coding: pdu.data_coding,
      esm_class: pdu.esm_class,
      registered_delivery: pdu.registered_delivery,
      udh: (sm.udh || []).map((b) => Array.from(b)),
      text: typeof message === 'string' ? message : Buffer.from(message).toString('hex'),
    });
    if (pdu.registered_delivery & 0x01) sendReceipt(session, pdu, messageId);
  });
  session.on('close', () => {
    if (bound === session) bound = null;
    emit({ event: 'closed' });
  });
  session.on('error', (e) => emit({ event: 'error', message: String(e) }));
});

server.listen(port, '127.0.0.1', () => emit({ event: 'listening', port: server.address().port }));

readline.createInterface({ input: process.stdin })
  .on('line', (line) => {
    if (!line.trim()) return;
    const cmd = JSON.parse(line);
    if (!bound) {
      emit({ event: 'deliver_sm_resp', id: cmd.id, error: 'not bound' });
      return;
    }
    bound.deliver_sm({
      source_addr: cmd.from,
      destination_addr: cmd.to,
      data_coding: 0x08,
      short_message: cmd.text,
    }, (resp) => emit({ event: 'deliver_sm_resp', id: cmd.id, status: resp.command_status }));
  })
  .on('close', () => {
    for (const s of server.sessions.slice()) s.destroy();
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 1000).unref();
  });
