import { LEGEND } from '../ipc/messages/legend.js';
import { DESIGN, docSection, legendMarkdown } from './helpers/doc-tables.js';
import test from './helpers/test.js';

test("docs/design.md's protocol legend is the one in ipc/messages/legend.ts", (t) => {
  t.is(docSection(DESIGN, 'legend'), legendMarkdown(), 'rewrite it: node dist/test/helpers/doc-tables.js --write');
});

test('every short wire key has a long name', (t) => {
  const all = [LEGEND.common, ...Object.values(LEGEND.requests), ...Object.values(LEGEND.replies)];
  for (const l of all) {
    for (const [k, [name, meaning]] of Object.entries(l as Record<string, readonly [string, string]>)) {
      if (k.length <= 3 && !['cwd', 'env', 'pid'].includes(k)) t.not(name, k, k);
      t.true(meaning.length > 0 && !meaning.includes('\n'), k);
    }
  }
});
