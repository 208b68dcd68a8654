/* Table cells break lines at spaces only. A browser may also break after a hyphen, which
   splits names and numbers ("COVID-" over "19", "actualmed-" over "ANON170", "0.785-" over
   "1.000") and CSS cannot forbid it; so each word with a hyphen in a table of the output is
   put in a span that does not wrap (class "nobreak", covidlab.css). The text is unchanged. */
document.addEventListener("DOMContentLoaded", () => {
  const cells = document.querySelectorAll(
    "div.cell_output table.dataframe th, div.cell_output table.dataframe td"
  );
  for (const cell of cells) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    const texts = [];
    while (walker.nextNode()) texts.push(walker.currentNode);
    for (const text of texts) {
      const parts = text.data.split(/(\S*-\S*)/);
      if (parts.length === 1) continue;
      const pieces = parts.map((part, index) => {
        if (index % 2 === 0) return document.createTextNode(part);
        const word = document.createElement("span");
        word.className = "nobreak";
        word.textContent = part;
        return word;
      });
      text.replaceWith(...pieces);
    }
  }
});
