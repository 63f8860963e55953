// send.js: an independent MLLP sender for the Go end-to-end test of
// fhir/hl7v2/mllp. It uses simple-hl7 (npm) for everything HL7: messages
// are parsed and re-encoded by its Parser, or built with its Message API,
// framed and sent by its TcpClient over one kept-alive connection, one
// after the other, and each ACK is parsed by its Parser.
//
// usage: node send.js HOST PORT < items.json
// items.json: [{"raw": "MSH|..."} | {"build": {"control", "trigger", "mrn", "family", "given", "visit"}}]
// prints one JSON line per item: {"ack": MSA-1, "control": MSA-2} or {"error": "..."}
'use strict';
const hl7 = require('simple-hl7');

function build(b) {
  const m = new hl7.Message('NODEHIE', 'NODEHOSP', 'EQUITAS', 'EQUITAS', '20260301080000', '',
    ['ADT', b.trigger, b.trigger === 'A03' ? 'ADT_A03' : 'ADT_A01'], b.control, 'P', '2.5.1');
  m.addSegment('EVN', b.trigger, '20260301080000');
  m.addSegment('PID', '1', '', [b.mrn, '', '', 'NODEHOSP', 'MR'], '', [b.family, b.given], '', '19750505', 'F');
  m.addSegment('PV1', '1', 'I', ['W2', '201', 'B', 'NODEHOSP'], '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', [b.visit],
    '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '', '20260301075500');
  return m;
}

async function main() {
  const [host, port] = process.argv.slice(2);
  const items = JSON.parse(require('fs').readFileSync(0, 'utf8'));
  const parser = new hl7.Parser({ segmentSeperator: '\r' });
  const client = hl7.Server.createTcpClient({ host, port: Number(port), keepalive: true });
  for (const it of items) {
    const msg = it.raw !== undefined ? parser.parse(it.raw) : build(it.build);
    const line = await new Promise((resolve) => {
      client.send(msg, (err, ack) => {
        if (err) return resolve({ error: String(err) });
        const msa = ack.getSegment('MSA');
        resolve({ ack: msa.getField(1), control: msa.getField(2) });
      });
    });
    process.stdout.write(JSON.stringify(line) + '\n');
  }
  client.close();
}

main().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(1); });
