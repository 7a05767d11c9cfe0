// The two DOM helpers the flows share.

// Makes an element: el('p', {class: 'note'}, 'text', childElement, ...). Undefined children are skipped.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  node.append(...children.filter((child) => child !== undefined && child !== null));
  return node;
}

// Runs action(fields) on each submit of form, with its button disabled until the action ends.
export function onSubmit(form, action) {
  const button = form.querySelector('button');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    button.disabled = true;
    try {
      await action(form.elements);
    } catch (err) {
      console.error(err); // the exchange panel already shows what failed
    } finally {
      button.disabled = false;
    }
  });
}
