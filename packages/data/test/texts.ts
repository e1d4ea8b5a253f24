// Texts shared by the filter, language and CLI tests.

/** A clean English document: varied sentences, one paragraph per line, terminal punctuation, stop words. */
export const GOOD = [
  'The harbor town grew slowly during the nineteenth century, and most of its families made a living from ' +
    'fishing and trade.',
  'In the winter of 1851 a storm destroyed half of the wooden piers, so the council borrowed money to build new ' +
    'ones of stone.',
  'Merchants from the capital arrived with the railway a decade later, bringing cloth, tools and newspapers that ' +
    'changed daily life.',
  'Teachers opened the first public school near the church, and within twenty years almost every child in the ' +
    'district could read.',
  'Today the old warehouses hold a museum, a library and several workshops where visitors can watch boats being ' +
    'repaired by hand.',
  'Historians who study the region argue that its story shows how small communities adapted to new technology ' +
    'without losing their character.',
].join('\n');
