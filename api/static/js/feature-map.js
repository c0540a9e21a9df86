// The small map on collection, items and item pages: our own imagery tiles (when the server has them) under
// the page's features or the collection's extent. Everything comes from this server; the data is in the page.
(function () {
  'use strict';
  const holder = document.getElementById('map');
  const source = document.getElementById('map-data');
  if (!holder || !source || typeof L === 'undefined') return;
  const data = JSON.parse(source.textContent);
  const map = L.map(holder, { attributionControl: false });
  if (data.basemap) L.tileLayer(data.basemap, { maxZoom: 18 }).addTo(map);

  const style = { color: '#c0392b', weight: 2, fillOpacity: 0.15 };
  let bounds = null;
  if (data.features) {
    const layer = L.geoJSON(data.features, {
      style: () => style,
      pointToLayer: (feature, latlng) => L.circleMarker(latlng, { ...style, radius: 6, fillOpacity: 0.6 }),
      onEachFeature: (feature, shape) => {
        if (!data.itemsUrl || feature.id === undefined) return;
        const link = document.createElement('a');
        link.href = data.itemsUrl + encodeURIComponent(feature.id);
        link.textContent = 'feature ' + feature.id;
        shape.bindPopup(link);
      },
    }).addTo(map);
    if (layer.getLayers().length) bounds = layer.getBounds();
  } else if (data.bbox) {
    const [x0, y0, x1, y1] = data.bbox;
    const box = L.rectangle([[y0, x0], [y1, x1]], { ...style, fillOpacity: 0.05 }).addTo(map);
    bounds = box.getBounds();
  }
  if (bounds && bounds.isValid()) map.fitBounds(bounds, { maxZoom: 16, padding: [10, 10] });
  else map.setView([0, 0], 1);
  window.__ready = true;
}());
