/**
 * What a brand-new server collection holds: default deck, default deck options, the stock
 * note types and the default config, as legacy JSON. Clients compare only mod/scm/empty to
 * decide what to do, so these need to be valid and complete, not byte-identical to Anki's.
 */

const CARD_CSS =
  ".card {\n  font-family: arial;\n  font-size: 20px;\n  line-height: 1.5;\n  text-align: center;\n  color: black;\n  background-color: white;\n}\n";
const CLOZE_CSS = `${CARD_CSS}.cloze {\n  font-weight: bold;\n  color: blue;\n}\n.nightMode .cloze {\n  color: lightblue;\n}\n`;
const LATEX_PRE =
  "\\documentclass[12pt]{article}\n\\special{papersize=3in,5in}\n\\usepackage[utf8]{inputenc}\n\\usepackage{amssymb,amsmath}\n\\pagestyle{empty}\n\\setlength{\\parindent}{0in}\n\\begin{document}\n";
const LATEX_POST = "\\end{document}";
const ANSWER_RULE = "\n\n<hr id=answer>\n\n";

type Json = unknown;

export function defaultDeck(): Record<string, Json> {
  return {
    id: 1,
    mod: 0,
    name: "Default",
    usn: 0,
    lrnToday: [0, 0],
    revToday: [0, 0],
    newToday: [0, 0],
    timeToday: [0, 0],
    collapsed: true,
    browserCollapsed: true,
    desc: "",
    dyn: 0,
    conf: 1,
    extendNew: 0,
    extendRev: 0,
    reviewLimit: null,
    newLimit: null,
    reviewLimitToday: null,
    newLimitToday: null,
    desiredRetention: null,
  };
}

export function defaultDeckConfig(): Record<string, Json> {
  return {
    id: 1,
    mod: 0,
    name: "Default",
    usn: 0,
    maxTaken: 60,
    autoplay: true,
    timer: 0,
    replayq: true,
    new: {
      bury: false,
      delays: [1.0, 10.0],
      initialFactor: 2500,
      ints: [1, 4, 0],
      order: 1,
      perDay: 20,
    },
    rev: { bury: false, ease4: 1.3, ivlFct: 1.0, maxIvl: 36500, perDay: 200, hardFactor: 1.2 },
    lapse: { delays: [10.0], leechAction: 1, leechFails: 8, minInt: 1, mult: 0.0 },
    dyn: false,
    newMix: 0,
    newPerDayMinimum: 0,
    interdayLearningMix: 0,
    reviewOrder: 0,
    newSortOrder: 0,
    newGatherPriority: 0,
    buryInterdayLearning: false,
    fsrsWeights: [],
    fsrsParams5: [],
    fsrsParams6: [],
    desiredRetention: 0.9,
    ignoreRevlogsBeforeDate: "",
    easyDaysPercentages: [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    stopTimerOnAnswer: false,
    secondsToShowQuestion: 0.0,
    secondsToShowAnswer: 0.0,
    questionAction: 0,
    answerAction: 0,
    waitForAudio: true,
    sm2Retention: 0.9,
    weightSearch: "",
  };
}

export function defaultConfig(basicNotetypeId: number): Record<string, Json> {
  return {
    activeDecks: [1],
    curDeck: 1,
    newSpread: 0,
    collapseTime: 1200,
    timeLim: 0,
    estTimes: true,
    dueCounts: true,
    curModel: basicNotetypeId,
    nextPos: 1,
    sortType: "noteFld",
    sortBackwards: false,
    addToCur: true,
    dayLearnFirst: false,
    schedVer: 2,
    creationOffset: null,
    sched2021: true,
  };
}

interface StockSpec {
  name: string;
  kind: 0 | 1;
  stockKind: number;
  css: string;
  fields: { name: string; tag?: number; preventDeletion?: boolean }[];
  templates: { name: string; qfmt: string; afmt: string }[];
  req: [number, "any" | "all" | "none", number[]][];
}

const FRONT_CARD = {
  name: "Card 1",
  qfmt: "{{Front}}",
  afmt: `{{FrontSide}}${ANSWER_RULE}{{Back}}`,
};
const REVERSE_CARD = {
  name: "Card 2",
  qfmt: "{{Back}}",
  afmt: `{{FrontSide}}${ANSWER_RULE}{{Front}}`,
};

const STOCK: StockSpec[] = [
  {
    name: "Basic",
    kind: 0,
    stockKind: 1,
    css: CARD_CSS,
    fields: [{ name: "Front" }, { name: "Back" }],
    templates: [FRONT_CARD],
    req: [[0, "any", [0]]],
  },
  {
    name: "Basic (and reversed card)",
    kind: 0,
    stockKind: 2,
    css: CARD_CSS,
    fields: [{ name: "Front" }, { name: "Back" }],
    templates: [FRONT_CARD, REVERSE_CARD],
    req: [
      [0, "any", [0]],
      [1, "any", [1]],
    ],
  },
  {
    name: "Basic (optional reversed card)",
    kind: 0,
    stockKind: 3,
    css: CARD_CSS,
    fields: [{ name: "Front" }, { name: "Back" }, { name: "Add Reverse" }],
    templates: [FRONT_CARD, { ...REVERSE_CARD, qfmt: "{{#Add Reverse}}{{Back}}{{/Add Reverse}}" }],
    req: [
      [0, "any", [0]],
      [1, "all", [1, 2]],
    ],
  },
  {
    name: "Basic (type in the answer)",
    kind: 0,
    stockKind: 4,
    css: CARD_CSS,
    fields: [{ name: "Front" }, { name: "Back" }],
    templates: [
      {
        name: "Card 1",
        qfmt: "{{Front}}\n\n{{type:Back}}",
        afmt: `{{Front}}${ANSWER_RULE}{{type:Back}}`,
      },
    ],
    req: [[0, "any", [0]]],
  },
  {
    name: "Cloze",
    kind: 1,
    stockKind: 5,
    css: CLOZE_CSS,
    fields: [
      { name: "Text", tag: 0, preventDeletion: true },
      { name: "Back Extra", tag: 1 },
    ],
    templates: [
      { name: "Cloze", qfmt: "{{cloze:Text}}", afmt: "{{cloze:Text}}<br>\n{{Back Extra}}" },
    ],
    req: [[0, "any", [0]]],
  },
];

/** The stock note types with ids counting up from `firstId` (ms timestamps, like the client). */
export function stockNotetypes(firstId: number): Record<string, Json>[] {
  return STOCK.map((spec, i) => notetypeFrom(spec, firstId + i));
}

function notetypeFrom(spec: StockSpec, id: number): Record<string, Json> {
  return {
    id,
    name: spec.name,
    type: spec.kind,
    mod: 0,
    usn: 0,
    sortf: 0,
    did: null,
    tmpls: spec.templates.map((t, ord) => ({
      ...t,
      ord,
      bqfmt: "",
      bafmt: "",
      did: null,
      bfont: "",
      bsize: 0,
      id: randomId(),
    })),
    flds: spec.fields.map((f, ord) => ({
      name: f.name,
      ord,
      sticky: false,
      rtl: false,
      font: "Arial",
      size: 20,
      description: "",
      plainText: false,
      collapsed: false,
      excludeFromSearch: false,
      id: randomId(),
      tag: f.tag ?? null,
      preventDeletion: f.preventDeletion ?? false,
    })),
    css: spec.css,
    latexPre: LATEX_PRE,
    latexPost: LATEX_POST,
    latexsvg: false,
    req: spec.req,
    originalStockKind: spec.stockKind,
  };
}

/** Random signed 64-bit id, as clients give fields and templates; kept exact via bigint. */
function randomId(): bigint {
  return new DataView(crypto.getRandomValues(new Uint8Array(8)).buffer).getBigInt64(0);
}
