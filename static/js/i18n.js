// Django's JavaScript catalog (/jsi18n/, loaded by base.html when the page is not in English), or
// else the English source text. Pass literal strings: makemessages -d djangojs extracts them.
const catalog = () => globalThis.django || {};

export function gettext(msgid) {
  const { gettext: translate } = catalog();
  return translate ? translate(msgid) : msgid;
}

export function ngettext(singular, plural, n) {
  const { ngettext: translate } = catalog();
  return translate ? translate(singular, plural, n) : n === 1 ? singular : plural;
}

// "%s" takes obj's items in turn; with `named`, "%(key)s" takes obj.key.
export function interpolate(fmt, obj, named) {
  const { interpolate: django } = catalog();
  if (django) return django(fmt, obj, named);
  if (named) return fmt.replace(/%\(\w+\)s/g, (match) => String(obj[match.slice(2, -2)]));
  let next = 0;
  return fmt.replace(/%s/g, () => String(obj[next++]));
}
