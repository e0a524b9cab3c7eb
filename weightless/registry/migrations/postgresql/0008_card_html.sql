-- A model card's HTML, rendered once per card (by the first page that shows it, whichever
-- process serves it) and kept: a page view never renders Markdown again. card_renderer names
-- what rendered it; HTML of another renderer, or of a card replaced since, is not used.
ALTER TABLE registry ADD COLUMN card_html TEXT;
ALTER TABLE registry ADD COLUMN card_renderer TEXT;
