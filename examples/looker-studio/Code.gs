// A Looker Studio community connector for a Bouncer dataset route (docs/datasets.md).
//
// getSchema reads GET <dataset>/_schema (the columns as JSON Schema, with the caller's masks);
// getData reads the rows as JSON, page by page with the signed `next` cursor. The credential is
// an API key (bk_…, sent as X-API-Key) or a bearer token, entered once by the user and kept in
// the connector's user properties: never in the URL, which the gateway refuses and logs keep.
//
// Deploy: a new Apps Script project, these two files (Code.gs, appsscript.json: View > Show
// manifest file), Deploy > Test deployments > Install, then add it as a data source in Looker Studio.

var cc = DataStudioApp.createCommunityConnector();
var CREDENTIAL = 'bouncer.credential';
var MAX_PAGES = 200; // a bound on one refresh: page_size × MAX_PAGES rows

// --- credential (cc.AuthType.KEY) ------------------------------------------------------------

function getAuthType() {
  return cc.newAuthTypeResponse().setAuthType(cc.AuthType.KEY).setHelpUrl('https://github.com/your-org/bouncer/blob/main/docs/bi-tools.md').build();
}

function setCredentials(request) {
  PropertiesService.getUserProperties().setProperty(CREDENTIAL, request.key);
  return { errorCode: 'NONE' };
}

function isAuthValid() {
  return PropertiesService.getUserProperties().getProperty(CREDENTIAL) !== null;
}

function resetAuth() {
  PropertiesService.getUserProperties().deleteProperty(CREDENTIAL);
}

function isAdminUser() {
  return false;
}

function authHeaders() {
  var credential = PropertiesService.getUserProperties().getProperty(CREDENTIAL) || '';
  return credential.indexOf('bk_') === 0 ? { 'X-API-Key': credential } : { Authorization: 'Bearer ' + credential };
}

// --- config ------------------------------------------------------------------------------------

function getConfig() {
  var config = cc.getConfig();
  config.newTextInput().setId('dataset').setName('Dataset URL').setHelpText('https://bouncer.example.com/datasets/orders').setPlaceholder('https://bouncer.example.com/datasets/orders');
  config.newTextInput().setId('params').setName('Parameters').setHelpText('As a query string: region=eu&since=-30d').setAllowOverride(true);
  return config.build();
}

function datasetUrl(request, suffix, query) {
  var base = String(request.configParams.dataset || '').replace(/\/+$/, '');
  if (!/^https:\/\//.test(base)) cc.newUserError().setText('The dataset URL must start with https://').throwException();
  var params = [request.configParams.params || '', query || ''].filter(function (p) { return p !== ''; }).join('&');
  return base + suffix + (params ? '?' + params : '');
}

function fetchJson(url) {
  var res = UrlFetchApp.fetch(url, { headers: authHeaders(), muteHttpExceptions: true });
  var body = JSON.parse(res.getContentText() || '{}');
  if (res.getResponseCode() !== 200) {
    // The gateway's problem answer says what is wrong: invalid_parameter names the parameter and rule.
    cc.newUserError().setText(res.getResponseCode() + ' ' + body.code + ': ' + body.detail).setDebugText(JSON.stringify(body)).throwException();
  }
  return body;
}

// --- schema ------------------------------------------------------------------------------------

function fieldsOf(schema) {
  var fields = cc.getFields();
  var types = cc.FieldType;
  Object.keys(schema.properties).forEach(function (name) {
    var column = schema.properties[name];
    var type = [].concat(column.type || []);
    // The database's kind: a date's `format` sits in an anyOf (years outside 0001-9999), and a
    // timestamp without a zone has none (RFC 3339 requires a zone).
    var kind = column['x-bouncer-kind'];
    if (kind === 'date') {
      fields.newDimension().setId(name).setName(name).setType(types.YEAR_MONTH_DAY);
    } else if (kind === 'timestamp' || kind === 'timestamptz') {
      fields.newDimension().setId(name).setName(name).setType(types.YEAR_MONTH_DAY_SECOND);
    } else if (type.indexOf('boolean') !== -1) {
      fields.newDimension().setId(name).setName(name).setType(types.BOOLEAN);
    } else if ((type.indexOf('integer') !== -1 || type.indexOf('number') !== -1) && !column['x-bouncer-mask'] && !/(^|_)id$/.test(name)) {
      fields.newMetric().setId(name).setName(name).setType(types.NUMBER);
    } else {
      fields.newDimension().setId(name).setName(name).setType(types.TEXT);
    }
  });
  return fields;
}

function getSchema(request) {
  return { schema: fieldsOf(fetchJson(datasetUrl(request, '/_schema', ''))).build() };
}

// --- data --------------------------------------------------------------------------------------

/** Looker Studio's forms: YYYYMMDD, YYYYMMDDHHmmss; numbers and booleans as they are. */
function cellOf(value, field) {
  if (value === null || value === undefined) return null;
  var type = field.getType();
  if (type === cc.FieldType.YEAR_MONTH_DAY) return String(value).slice(0, 10).replace(/-/g, '');
  if (type === cc.FieldType.YEAR_MONTH_DAY_SECOND) return String(value).replace(/[-:T]/g, '').slice(0, 14);
  return value;
}

function getData(request) {
  var schema = fetchJson(datasetUrl(request, '/_schema', ''));
  var requested = fieldsOf(schema).forIds(request.fields.map(function (f) { return f.name; }));
  var fields = requested.asArray();
  var rows = [];
  var cursor = null;
  for (var page = 0; page < MAX_PAGES; page++) {
    var answer = fetchJson(datasetUrl(request, '', 'format=json' + (cursor ? '&cursor=' + encodeURIComponent(cursor) : '')));
    answer.rows.forEach(function (row) {
      rows.push({ values: fields.map(function (field) { return cellOf(row[field.getId()], field); }) });
    });
    cursor = answer.next;
    if (!cursor) break;
  }
  return { schema: requested.build(), rows: rows };
}
