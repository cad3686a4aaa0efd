/**
 * Presence documents as they are met in the wild: the RFC examples (RFC 3863 §5, RFC 4479,
 * RFC 4480, RFC 4481 shapes) and what baresip, Linphone, sip.js applications
 * and IMS/OMA clients (doubango) publish.
 */

/** RFC 3863 §5, first example: the PIDF namespace under a prefix, a telephone contact. */
export const RFC3863_MINIMAL = `<?xml version="1.0" encoding="UTF-8"?>
<impp:presence xmlns:impp="urn:ietf:params:xml:ns:pidf"
    entity="pres:someone@example.com">
  <impp:tuple id="sg89ae">
    <impp:status>
      <impp:basic>open</impp:basic>
    </impp:status>
    <impp:contact priority="0.8">tel:+09012345678</impp:contact>
  </impp:tuple>
</impp:presence>
`;

/**
 * RFC 3863 §5, second example's shape: the IM status extension, a private extension in
 * the status and at the top, notes in two languages, timestamps.
 */
export const RFC3863_EXTENDED = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:im="urn:ietf:params:xml:ns:pidf:im"
    xmlns:myex="http://id.example.com/presence/"
    entity="pres:someone@example.com">
  <tuple id="bs35r9">
    <status>
      <basic>open</basic>
      <im:im>busy</im:im>
      <myex:location>home</myex:location>
    </status>
    <contact priority="0.8">im:someone@mobilecarrier.net</contact>
    <note xml:lang="en">Don't Disturb Please!</note>
    <note xml:lang="fr">Ne derangez pas, s'il vous plait</note>
    <timestamp>2001-10-27T16:49:29Z</timestamp>
  </tuple>
  <tuple id="eg92n8">
    <status>
      <basic>open</basic>
    </status>
    <contact priority="1.0">mailto:someone@example.com</contact>
  </tuple>
  <note>I'll be in Tokyo next week</note>
  <myex:mood>happy</myex:mood>
</presence>
`;

/** RFC 4479 example shape: a service bound to a device by deviceID, a person, the device. */
export const RFC4479_EXAMPLE = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    xmlns:c="urn:ietf:params:xml:ns:pidf:cipid"
    entity="pres:someone@example.com">
  <tuple id="sg89ae">
    <status>
      <basic>open</basic>
    </status>
    <dm:deviceID>mac:8asd7d7d70</dm:deviceID>
    <contact>sip:someone@example.com</contact>
    <timestamp>2005-05-30T22:00:29Z</timestamp>
  </tuple>
  <dm:person id="p1">
    <rpid:activities>
      <rpid:on-the-phone/>
    </rpid:activities>
    <c:display-name>Some One</c:display-name>
    <dm:timestamp>2005-05-30T22:00:29Z</dm:timestamp>
  </dm:person>
  <dm:device id="pc122">
    <rpid:user-input>idle</rpid:user-input>
    <dm:deviceID>mac:8asd7d7d70</dm:deviceID>
    <dm:timestamp>2005-05-30T22:00:29Z</dm:timestamp>
  </dm:device>
</presence>
`;

/** RFC 4480 example shape: most RPID elements, on the person, a device and the tuples. */
export const RFC4480_EXAMPLE = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:lt="urn:ietf:params:xml:ns:location-type"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"
    entity="pres:someone@example.com">
  <tuple id="bs35r9">
    <status>
      <basic>open</basic>
    </status>
    <dm:deviceID>urn:device:0003ba4811e3</dm:deviceID>
    <rpid:relationship><rpid:self/></rpid:relationship>
    <rpid:service-class><rpid:electronic/></rpid:service-class>
    <contact priority="0.8">im:someone@mobilecarrier.net</contact>
    <note xml:lang="en">Don't Disturb Please!</note>
    <note xml:lang="fr">Ne derangez pas, s'il vous plait</note>
    <timestamp>2005-10-27T16:49:29Z</timestamp>
  </tuple>
  <tuple id="ty4658">
    <status>
      <basic>open</basic>
    </status>
    <rpid:relationship><rpid:assistant/></rpid:relationship>
    <contact priority="1.0">mailto:secretary@example.com</contact>
  </tuple>
  <tuple id="eg92n8">
    <status>
      <basic>open</basic>
    </status>
    <dm:deviceID>urn:x-mac:0003ba4811e3</dm:deviceID>
    <rpid:class>email</rpid:class>
    <rpid:service-class><rpid:electronic/></rpid:service-class>
    <rpid:status-icon>http://example.com/mail.png</rpid:status-icon>
    <contact priority="1.0">mailto:someone@example.com</contact>
  </tuple>
  <note>I'll be in Tokyo next week</note>
  <dm:device id="pc147">
    <rpid:user-input idle-threshold="600" last-input="2004-10-21T13:20:00.000-05:00">idle</rpid:user-input>
    <dm:deviceID>urn:device:0003ba4811e3</dm:deviceID>
    <dm:note>PC</dm:note>
  </dm:device>
  <dm:person id="p1">
    <rpid:activities from="2005-05-30T12:00:00+05:00" until="2005-05-30T17:00:00+05:00">
      <rpid:note>Far away</rpid:note>
      <rpid:away/>
    </rpid:activities>
    <rpid:class>calendar</rpid:class>
    <rpid:mood>
      <rpid:angry/>
      <rpid:other>brooding</rpid:other>
    </rpid:mood>
    <rpid:place-is>
      <rpid:audio><rpid:noisy/></rpid:audio>
      <rpid:video><rpid:too-bright/></rpid:video>
      <rpid:text><rpid:uncomfortable/></rpid:text>
    </rpid:place-is>
    <rpid:place-type><lt:residence/></rpid:place-type>
    <rpid:privacy><rpid:unknown/></rpid:privacy>
    <rpid:sphere>bowling league</rpid:sphere>
    <rpid:status-icon>http://example.com/play.gif</rpid:status-icon>
    <rpid:time-offset>-240</rpid:time-offset>
    <dm:note>Scoring 120</dm:note>
    <dm:timestamp>2005-05-30T16:09:44+05:00</dm:timestamp>
  </dm:person>
</presence>
`;

/** RFC 4481 example shape: a tuple with its status for next week. */
export const RFC4481_EXAMPLE = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf"
    xmlns:ts="urn:ietf:params:xml:ns:pidf:timed-status"
    entity="pres:someone@example.com">
  <tuple id="c8dqui">
    <status>
      <basic>open</basic>
    </status>
    <ts:timed-status from="2005-08-15T10:20:00.000-05:00" until="2005-08-22T19:30:00.000-05:00">
      <basic>closed</basic>
      <note xml:lang="en">In Vienna, away from the phone</note>
    </ts:timed-status>
    <contact>sip:someone@example.com</contact>
  </tuple>
  <note xml:lang="en">I'll be in Vienna next week</note>
</presence>
`;

/** baresip's presence module: CRLF line ends, the person before the tuple, empty activities. */
export const BARESIP = [
  '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
  '<presence xmlns="urn:ietf:params:xml:ns:pidf"',
  '    xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"',
  '    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid"',
  '    entity="sip:alice@example.com">',
  '  <dm:person id="p4159"><rpid:activities/></dm:person>',
  '  <tuple id="t4109">',
  '    <status>',
  '      <basic>open</basic>',
  '    </status>',
  '    <contact>sip:alice@example.com</contact>',
  '  </tuple>',
  '</presence>',
  '',
].join('\r\n');

/**
 * Linphone (libxml2 text writer, one-space indent): ids may start with ':', notes in the
 * rpid namespace inside activities, and the PIDF timestamp inside dm:person.
 */
export const LINPHONE = `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" entity="sip:bob@example.org">
 <tuple id=":3kq9z">
  <status>
   <basic>open</basic>
  </status>
  <contact priority="0.8">sip:bob@example.org</contact>
  <timestamp>2024-03-01T10:00:00Z</timestamp>
 </tuple>
 <dm:person id="qx7-pa">
  <rpid:activities>
   <rpid:note xml:lang="en">Lunch</rpid:note>
   <rpid:meal/>
  </rpid:activities>
  <dm:note xml:lang="en">Back at two</dm:note>
  <timestamp>2024-03-01T10:00:00Z</timestamp>
 </dm:person>
</presence>
`;

/** A sip.js web phone (hand-built string, single quotes, `pres:` entity, IM status in the tuple). */
export const SIPJS_APP =
  "<?xml version='1.0' encoding='UTF-8'?>" +
  "<presence xmlns='urn:ietf:params:xml:ns:pidf' xmlns:dm='urn:ietf:params:xml:ns:pidf:data-model'" +
  " xmlns:rpid='urn:ietf:params:xml:ns:pidf:rpid' xmlns:im='urn:ietf:params:xml:ns:pidf:im' entity='sip:carol@example.com'>" +
  "<dm:person id='pc3a1'><rpid:activities><rpid:busy/></rpid:activities><dm:note>In a meeting</dm:note></dm:person>" +
  "<tuple id='tc3a1'><status><basic>open</basic><im:im>busy</im:im></status>" +
  "<contact>sip:carol@example.com;transport=ws</contact><note>In a meeting</note></tuple>" +
  '</presence>';

/**
 * An IMS/OMA client (doubango): the data model under `pdm`, the PIDF namespace declared
 * last, a device with a status and capabilities but no deviceID, OMA extensions.
 */
export const DOUBANGO = `<?xml version="1.0" encoding="utf-8"?><presence xmlns:cp="urn:ietf:params:xml:ns:pidf:cipid" xmlns:caps="urn:ietf:params:xml:ns:pidf:caps" xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:pdm="urn:ietf:params:xml:ns:pidf:data-model" xmlns:op="urn:oma:xml:prs:pidf:oma-pres" entity="sip:dave@ims.example.net" xmlns="urn:ietf:params:xml:ns:pidf"><pdm:person id="RPVRYNJH"><op:overriding-willingness><op:basic>open</op:basic></op:overriding-willingness><rpid:activities><rpid:busy /></rpid:activities><rpid:mood><rpid:guilty /></rpid:mood><cp:homepage>http://example.net/dave</cp:homepage><pdm:note>Come and chat</pdm:note></pdm:person><pdm:device id="d0001"><status><basic>open</basic></status><caps:devcaps><caps:mobility><caps:supported><caps:fixed /></caps:supported></caps:mobility></caps:devcaps><op:network-availability><op:network id="IMS"><op:active /></op:network></op:network-availability></pdm:device></presence>`;

/**
 * Default namespaces everywhere: the person and its RPID children each declare their own
 * default namespace instead of using prefixes.
 */
export const DEFAULT_NAMESPACES = `<?xml version="1.0"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sips:erin@example.com">
  <tuple id="t1"><status><basic>closed</basic></status></tuple>
  <person xmlns="urn:ietf:params:xml:ns:pidf:data-model" id="p1">
    <activities xmlns="urn:ietf:params:xml:ns:pidf:rpid"><vacation/></activities>
    <note xml:lang="de">Im Urlaub</note>
    <timestamp>2024-07-01T08:00:00+02:00</timestamp>
  </person>
</presence>
`;

/** Every document above that parses, by name. */
export const VALID_DOCUMENTS: Readonly<Record<string, string>> = {
  RFC3863_MINIMAL,
  RFC3863_EXTENDED,
  RFC4479_EXAMPLE,
  RFC4480_EXAMPLE,
  RFC4481_EXAMPLE,
  BARESIP,
  LINPHONE,
  SIPJS_APP,
  DOUBANGO,
  DEFAULT_NAMESPACES,
};

/** A minimal valid document around `body`. */
export function pidf(body: string, entity = 'pres:someone@example.com', rootExtra = ''): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}"${rootExtra}>${body}</presence>`;
}

/** A tuple with a basic status. */
export function tuple(id: string, basic = 'open', extra = ''): string {
  return `<tuple id="${id}"><status><basic>${basic}</basic></status>${extra}</tuple>`;
}
