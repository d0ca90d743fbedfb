// Condition type of a tier: web -> WebReady.
export const tierConditionType = (tier: string): string =>
  `${tier.charAt(0).toUpperCase()}${tier.slice(1)}Ready`;
